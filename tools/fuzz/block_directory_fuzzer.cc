// libFuzzer target: BlockDirectoryReader over any directory bytes (the
// input, in a heap buffer of exactly its size, its heartbeat word made
// fresh) and a 64 KiB arena, as a worker maps whatever the daemon's memfd
// holds. Create must refuse a header that does not fit its mapping; on one
// it accepts, every query (each listed slot's key, and one key from the
// input) must stay inside the two buffers, which ASan watches, whatever
// the slots and page links say.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "client/block_directory_reader.h"
#include "proto/block_directory_layout.h"

namespace {

constexpr uint64_t kArenaBytes = 64 << 10;

void Query(const kvcache::BlockDirectoryReader& reader, uint32_t ns, const kvcache::BlockKey& key) {
  reader.Absent(ns, key);
  bool changed = false;
  const std::optional<uint64_t> size = reader.ListedSize(ns, key, &changed);
  const uint64_t want = size.value_or(4096);
  std::vector<uint8_t> dest(std::min<uint64_t>(want, 256 << 10));
  reader.Copy(ns, key, 0, absl::MakeSpan(dest), /*streaming=*/false);
  const uint64_t offset = want / 3;
  dest.resize(std::min<uint64_t>(want - offset, 256 << 10));
  reader.Copy(ns, key, offset, absl::MakeSpan(dest), /*streaming=*/true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<uint8_t>* const arena = new std::vector<uint8_t>(kArenaBytes, 0xa5);
  // new[] aligns to 16: enough for the slots' 8-byte atomics.
  std::unique_ptr<uint8_t[]> directory(new uint8_t[size == 0 ? 1 : size]);
  std::memcpy(directory.get(), data, size);
  if (size >= kvcache::kDirectoryHeartbeatOffset + 4) {
    const uint32_t now = kvcache::DirectoryClockMs();
    std::memcpy(directory.get() + kvcache::kDirectoryHeartbeatOffset, &now, 4);
  }
  auto reader =
      kvcache::BlockDirectoryReader::Create(directory.get(), size, arena->data(), kArenaBytes);
  if (!reader.ok()) return 0;
  (*reader)->complete();
  (*reader)->live();
  kvcache::DirectoryHeader h;
  std::memcpy(&h, directory.get(), sizeof(h));
  const uint64_t slots = std::min<uint64_t>(uint64_t{h.bucket_count} * kvcache::kDirectoryWays, 64);
  for (uint64_t i = 0; i < slots; ++i) {
    const uint8_t* slot = directory.get() + h.slots_offset + i * sizeof(kvcache::DirectorySlot);
    uint32_t ns = 0, key_size = 0;
    uint8_t key[32];
    std::memcpy(&ns, slot + offsetof(kvcache::DirectorySlot, ns), 4);
    std::memcpy(&key_size, slot + offsetof(kvcache::DirectorySlot, key_size), 4);
    std::memcpy(key, slot + offsetof(kvcache::DirectorySlot, key), sizeof(key));
    auto k = kvcache::BlockKey::FromBytes(
        std::string(reinterpret_cast<const char*>(key), std::min<uint32_t>(key_size, 32)));
    if (k.ok()) Query(**reader, ns, *k);
  }
  if (size >= 8) {  // a key no slot need hold: the input's last bytes
    auto k = kvcache::BlockKey::FromBytes(
        std::string(reinterpret_cast<const char*>(data + size - 8), 8));
    if (k.ok()) Query(**reader, 1, *k);
  }
  return 0;
}
