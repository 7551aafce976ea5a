// Writes the fuzzers' seed inputs (tools/fuzz/corpus/): well-formed
// FetchChunks, NVMe record headers and a block directory, so that mutation starts from inputs
// that pass the checks. Run by tools/scripts/fuzz.sh --seeds; the output is
// checked in.
#include <fstream>
#include <string>

#include <cstddef>
#include <cstring>

#include "offload/nvme_record.h"
#include "proto/block_directory_layout.h"
#include "proto/fetch_chunk_codec.h"

namespace {

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A directory over a 64 KiB arena of 4 KiB pages: 4 buckets, a presence
// table of 16, and one block of 6,000 bytes on pages 2 then 5.
std::string DirectorySeed() {
  using namespace kvcache;
  DirectoryHeader h{};
  h.magic = kDirectoryMagic;
  h.version = kDirectoryVersion;
  h.ways = kDirectoryWays;
  h.bucket_count = 4;
  h.page_count = 16;
  h.page_bytes = 4096;
  h.presence_count = 16;
  h.slots_offset = 64;
  h.next_offset = h.slots_offset + 16 * sizeof(DirectorySlot);
  h.total_bytes = h.next_offset + (16 + 16) * sizeof(uint32_t);
  std::string d(h.total_bytes, '\0');
  std::memcpy(d.data(), &h, sizeof(h));
  const uint32_t complete = 1;
  std::memcpy(d.data() + kDirectoryCompleteOffset, &complete, 4);
  uint8_t key[32];
  for (int i = 0; i < 32; ++i) key[i] = static_cast<uint8_t>('a' + i % 26);
  const DirectoryKey k(key, 32);
  const uint32_t ns = 1;
  char* slot = d.data() + h.slots_offset +
               DirectoryBucket(ns, k, h.bucket_count) * kDirectoryWays * sizeof(DirectorySlot);
  const uint64_t seq = 2, size = 6000;
  const uint32_t first_page = 2, key_size = 32;
  std::memcpy(slot + offsetof(DirectorySlot, seq), &seq, 8);
  std::memcpy(slot + offsetof(DirectorySlot, ns), &ns, 4);
  std::memcpy(slot + offsetof(DirectorySlot, first_page), &first_page, 4);
  std::memcpy(slot + offsetof(DirectorySlot, size), &size, 8);
  std::memcpy(slot + offsetof(DirectorySlot, key_size), &key_size, 4);
  std::memcpy(slot + offsetof(DirectorySlot, key), k.words, 32);
  auto* next = reinterpret_cast<uint32_t*>(d.data() + h.next_offset);
  for (int p = 0; p < 16; ++p) next[p] = kDirectoryNoPage;
  next[2] = 5;
  auto* presence = next + 16;
  presence[DirectoryPresenceSlot(ns, k, h.presence_count)] = 1;
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string dir = argv[1];
  kvcache::FetchChunkHeader h;
  h.item_index = 3;
  h.block_size = 16;
  h.block_checksum = 0x1234567890abcdefull;
  h.offset = 8;
  h.data_length = 8;
  h.tier = 2;
  // The first byte is the fuzzer's split choice.
  Write(dir + "/fetch_chunk/whole", "\x05" + kvcache::EncodeFetchChunkHeader(h) + "payload!");
  h.data_length = 0;
  h.tier = 0;
  Write(dir + "/fetch_chunk/empty", "\x01" + kvcache::EncodeFetchChunkHeader(h));

  kvcache::NvmeRecordHeader n;
  n.key = std::string(32, 'k');
  n.tenant = "default";
  n.name_space = "model@0123456789abcdef0123456789abcdef";
  n.payload_bytes = 262144;
  n.payload_checksum = 42;
  n.generation = 7;
  auto sector = kvcache::EncodeNvmeHeader(n);
  if (!sector.ok()) return 1;
  Write(dir + "/nvme_header/block", std::string(sector->begin(), sector->end()));
  n.tenant.clear();
  n.name_space.clear();
  n.key = "k";
  sector = kvcache::EncodeNvmeHeader(n);
  if (!sector.ok()) return 1;
  Write(dir + "/nvme_header/short", std::string(sector->begin(), sector->end()));

  Write(dir + "/block_directory/one-block", DirectorySeed());

  // Wire programs (tools/fuzz/daemon_under_fuzz.h): an op byte, then its
  // fields. A put of 4,096 bytes of 'x' to key 2 of namespace 1, a fetch of
  // that key, a read of the replies.
  const std::string put = std::string("\x03\x00\x10x\x01\x02\x01\x01", 8);
  const std::string fetch = std::string("\x05\x01\x01\x02\x00\x00\x00", 7);
  Write(dir + "/data_port_wire/put-fetch", put + fetch + "\x06");
  // Same-host: a put begin of key 2, a commit of lease 1, a fetch lease of
  // key 2, a release of lease 2, a read.
  const std::string begin = std::string("\x04\x01\x02\x01\x01\x00\x10\x00\x00\x07\x00\x00\x00", 13);
  const std::string commit = std::string("\x05\x01\x01", 3);
  const std::string lease = std::string("\x03\x01", 2) + fetch.substr(1);
  const std::string release = std::string("\x05\x02\x00", 3);
  Write(dir + "/local_wire/lease-cycle", begin + commit + lease + release + "\x06");

  int i = 0;
  for (const char* s : {"64MiB", "1.5GiB", "0", "4096", "16KiB", "2 MiB", "1e3"}) {
    Write(dir + "/byte_size/seed-" + std::to_string(i++), s);
  }
  return 0;
}
