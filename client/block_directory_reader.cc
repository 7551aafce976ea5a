#include "client/block_directory_reader.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/bulk_copy.h"

namespace kvcache {

absl::StatusOr<std::unique_ptr<BlockDirectoryReader>> BlockDirectoryReader::Create(
    const uint8_t* directory, uint64_t directory_bytes, const uint8_t* arena,
    uint64_t arena_bytes) {
  DirectoryHeader h;
  if (directory_bytes < sizeof(h)) return absl::InvalidArgumentError("block directory too small");
  std::memcpy(&h, directory, sizeof(h));
  if (h.magic != kDirectoryMagic || h.version != kDirectoryVersion || h.ways != kDirectoryWays) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown block directory format (version ", h.version, ")"));
  }
  // Each offset is checked against the mapping before anything is added to
  // it: offsets near 2^64 would otherwise wrap into sums that look small.
  const uint64_t slots_bytes = uint64_t{h.bucket_count} * kDirectoryWays * sizeof(DirectorySlot);
  const uint64_t links_and_presence_bytes =
      (uint64_t{h.page_count} + h.presence_count) * sizeof(uint32_t);
  const bool fits = h.bucket_count > 0 && (h.bucket_count & (h.bucket_count - 1)) == 0 &&
                    h.page_bytes > 0 && uint64_t{h.page_count} * h.page_bytes <= arena_bytes &&
                    h.slots_offset >= sizeof(h) && h.slots_offset % alignof(DirectorySlot) == 0 &&
                    h.slots_offset <= directory_bytes &&
                    slots_bytes <= directory_bytes - h.slots_offset &&
                    h.next_offset >= h.slots_offset + slots_bytes &&
                    h.next_offset % alignof(uint32_t) == 0 && h.next_offset <= directory_bytes &&
                    links_and_presence_bytes <= directory_bytes - h.next_offset &&
                    (h.presence_count & (h.presence_count - 1)) == 0 &&
                    h.total_bytes <= directory_bytes;
  if (!fits) return absl::InvalidArgumentError("block directory header does not fit its mapping");
  return std::unique_ptr<BlockDirectoryReader>(new BlockDirectoryReader(h, directory, arena));
}

uint32_t BlockDirectoryReader::NextPage(uint32_t page) const {
  const auto* next =
      reinterpret_cast<const std::atomic<uint32_t>*>(directory_ + header_.next_offset);
  return next[page].load(std::memory_order_relaxed);
}

BlockDirectoryReader::SlotRead BlockDirectoryReader::FindSlot(uint32_t ns,
                                                              const BlockKey& key) const {
  const DirectoryKey want(key.data(), key.size());
  const uint64_t bucket = DirectoryBucket(ns, want, header_.bucket_count);
  for (uint32_t way = 0; way < kDirectoryWays; ++way) {
    const DirectorySlot& slot = Slot(bucket * kDirectoryWays + way);
    const uint64_t before = slot.seq.load(std::memory_order_acquire);
    if ((before & 1) != 0) continue;  // being changed: not ours to trust now
    bool same = slot.key_size.load(std::memory_order_relaxed) == want.size &&
                slot.ns.load(std::memory_order_relaxed) == ns;
    for (size_t w = 0; same && w < kDirectoryKeyWords; ++w) {
      same = slot.key[w].load(std::memory_order_relaxed) == want.words[w];
    }
    if (!same) continue;
    SlotRead read;
    read.slot = &slot;
    read.seq = before;
    read.size = slot.size.load(std::memory_order_relaxed);
    read.first_page = slot.first_page.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    read.changed = slot.seq.load(std::memory_order_relaxed) != before;
    return read;
  }
  return SlotRead{};
}

bool BlockDirectoryReader::complete() const {
  // Directories with a smaller header have no such word: never complete.
  if (header_.slots_offset < kDirectoryCompleteOffset + sizeof(uint32_t)) return false;
  const auto* word =
      reinterpret_cast<const std::atomic<uint32_t>*>(directory_ + kDirectoryCompleteOffset);
  return word->load(std::memory_order_acquire) == 1;
}

bool BlockDirectoryReader::Absent(uint32_t ns, const BlockKey& key) const {
  if (header_.presence_count == 0) return false;
  const auto* presence = reinterpret_cast<const std::atomic<uint32_t>*>(
      directory_ + header_.next_offset + uint64_t{header_.page_count} * sizeof(uint32_t));
  const DirectoryKey k(key.data(), key.size());
  return presence[DirectoryPresenceSlot(ns, k, header_.presence_count)].load(
             std::memory_order_acquire) == 0;
}

bool BlockDirectoryReader::live() const {
  // No room for the word: never trusted.
  if (header_.slots_offset < kDirectoryHeartbeatOffset + sizeof(uint32_t)) return false;
  const auto* word =
      reinterpret_cast<const std::atomic<uint32_t>*>(directory_ + kDirectoryHeartbeatOffset);
  const uint32_t age = DirectoryClockMs() - word->load(std::memory_order_acquire);  // mod 2^32
  return age < kDirectoryStaleMs;
}

std::optional<uint64_t> BlockDirectoryReader::ListedSize(uint32_t ns, const BlockKey& key,
                                                         bool* changed) const {
  const SlotRead read = FindSlot(ns, key);
  if (changed != nullptr) *changed = read.slot != nullptr && read.changed;
  if (read.slot == nullptr || read.changed) return std::nullopt;
  return read.size;
}

BlockDirectoryReader::Result BlockDirectoryReader::Copy(uint32_t ns, const BlockKey& key,
                                                        uint64_t offset, absl::Span<uint8_t> dest,
                                                        bool streaming) const {
  const SlotRead read = FindSlot(ns, key);
  if (read.slot == nullptr) return Result::kMissing;
  if (read.changed) return Result::kChanged;
  // The slot was consistent: this is the block, with this size.
  const uint64_t size = read.size;
  if (offset > size || dest.size() > size - offset) return Result::kMissing;
  // A block larger than the arena can only be a slot rewritten under us;
  // past this check every walk of its page links is shorter than the arena.
  if (size > uint64_t{header_.page_count} * header_.page_bytes) return Result::kChanged;

  uint32_t page = read.first_page;
  const uint64_t page_bytes = header_.page_bytes;
  for (uint64_t skip = offset / page_bytes; skip > 0 && page < header_.page_count; --skip) {
    page = NextPage(page);
  }
  uint64_t in_page = offset % page_bytes;
  uint8_t* to = dest.data();
  uint64_t left = dest.size();
  while (left > 0) {
    // A link past the arena can only be a link rewritten under us.
    if (page >= header_.page_count) return Result::kChanged;
    const uint64_t n = std::min(left, page_bytes - in_page);
    const uint8_t* from = arena_ + uint64_t{page} * page_bytes + in_page;
    (streaming ? BulkCopyStreaming : BulkCopy)(to, from, n);
    to += n;
    left -= n;
    in_page = 0;
    if (left > 0) page = NextPage(page);
  }
  std::atomic_thread_fence(std::memory_order_acquire);
  if (read.slot->seq.load(std::memory_order_relaxed) != read.seq) return Result::kChanged;
  return Result::kCopied;
}

}  // namespace kvcache
