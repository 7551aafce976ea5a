#include "kvstore/index/block_directory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"
#include "common/memfd_seal.h"

namespace kvcache {
namespace {

constexpr uint64_t kHeaderBytes = 64;
static_assert(sizeof(DirectoryHeader) <= kHeaderBytes);

uint32_t FloorPowerOfTwo(uint64_t n) {
  uint32_t p = 1;
  while (p <= UINT32_MAX / 2 && uint64_t{p} * 2 <= n) p *= 2;
  return p;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BlockDirectory>> BlockDirectory::Create(const HostArena& arena,
                                                                      uint64_t max_blocks) {
  DirectoryHeader header{};
  header.magic = kDirectoryMagic;
  header.version = kDirectoryVersion;
  header.ways = kDirectoryWays;
  header.page_bytes = arena.page_bytes();
  header.page_count = static_cast<uint32_t>(arena.capacity_bytes() / arena.page_bytes());
  // Four slots per page keep buckets at most a quarter full when every block
  // is one page (about 0.4% of blocks then find theirs full); with small
  // pages the directory is capped at 1/64 of the arena instead.
  const uint64_t wanted_slots =
      std::min<uint64_t>(uint64_t{header.page_count} * 4, arena.capacity_bytes() / 64 / 64);
  header.bucket_count = FloorPowerOfTwo(std::max<uint64_t>(1, wanted_slots / kDirectoryWays));
  const uint64_t slots = uint64_t{header.bucket_count} * kDirectoryWays;
  header.slots_offset = kHeaderBytes;
  header.next_offset = kHeaderBytes + slots * sizeof(DirectorySlot);
  // Four counters per block keep about 78% of the keys that are not cached
  // on a counter of 0 when every tier is full, and more while it is not.
  header.presence_count = std::min<uint32_t>(
      FloorPowerOfTwo(std::max<uint64_t>(4096, 8 * max_blocks - 1)), 1u << 24);
  const uint64_t used = header.next_offset + uint64_t{header.page_count} * sizeof(uint32_t) +
                        uint64_t{header.presence_count} * sizeof(uint32_t);
  header.total_bytes = (used + 4095) / 4096 * 4096;

  const int fd = memfd_create("kvcache-block-directory", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(header.total_bytes)) != 0) {
    const int err = errno;
    if (fd >= 0) close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot create the block directory memfd: ", std::strerror(err)));
  }
  void* base = mmap(nullptr, header.total_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    const int err = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot map the block directory: ", std::strerror(err)));
  }
  if (!SealAgainstOtherWriters(fd)) {
    munmap(base, header.total_bytes);
    close(fd);
    return absl::UnavailableError(
        "cannot seal the block directory memfd (needs Linux 5.1), so it cannot be shared "
        "read-only");
  }
  return std::unique_ptr<BlockDirectory>(
      new BlockDirectory(fd, static_cast<uint8_t*>(base), header.total_bytes, header));
}

void BlockDirectory::CountPresent(uint32_t ns, const BlockKey& key, int delta) {
  const DirectoryKey k(key.data(), key.size());
  presence_[DirectoryPresenceSlot(ns, k, header_.presence_count)].fetch_add(
      static_cast<uint32_t>(delta), std::memory_order_acq_rel);
}

void BlockDirectory::SetComplete(bool tiers_listable) {
  MutexLock lock(&mu_);
  tiers_listable_ = tiers_listable;
  PublishComplete();
}

void BlockDirectory::ForgetUnlisted() {
  MutexLock lock(&mu_);
  if (unlisted_now_ > 0) --unlisted_now_;
  PublishComplete();
}

void BlockDirectory::PublishComplete() {
  auto* word = reinterpret_cast<std::atomic<uint32_t>*>(base_ + kDirectoryCompleteOffset);
  word->store(tiers_listable_ && unlisted_now_ == 0 ? 1 : 0, std::memory_order_release);
}

BlockDirectory::BlockDirectory(int fd, uint8_t* base, uint64_t bytes, const DirectoryHeader& header)
    : fd_(fd),
      base_(base),
      bytes_(bytes),
      header_(header),
      next_page_(reinterpret_cast<std::atomic<uint32_t>*>(base + header.next_offset)),
      presence_(next_page_ + header.page_count) {
  // The memfd starts zeroed: every slot empty with an even sequence number.
  for (uint64_t i = 0; i < uint64_t{header.bucket_count} * kDirectoryWays; ++i) {
    new (base + header.slots_offset + i * sizeof(DirectorySlot)) DirectorySlot{};
  }
  for (uint32_t p = 0; p < header.page_count; ++p) {
    new (&next_page_[p]) std::atomic<uint32_t>(kDirectoryNoPage);
  }
  for (uint32_t i = 0; i < header.presence_count; ++i) new (&presence_[i]) std::atomic<uint32_t>(0);
  std::memcpy(base, &header, sizeof(header));  // last: readers check the magic
  in_use_.resize(uint64_t{header.bucket_count} * kDirectoryWays);
  // The first beat before anyone can map it; then every kDirectoryHeartbeatMs.
  reinterpret_cast<std::atomic<uint32_t>*>(base_ + kDirectoryHeartbeatOffset)
      ->store(DirectoryClockMs(), std::memory_order_release);
  heartbeat_ = std::thread([this] { Beat(); });
}

void BlockDirectory::Beat() {
  auto* word = reinterpret_cast<std::atomic<uint32_t>*>(base_ + kDirectoryHeartbeatOffset);
  MutexLock lock(&mu_);
  while (!stopping_) {
    word->store(DirectoryClockMs(), std::memory_order_release);
    stop_cv_.WaitFor(&mu_, std::chrono::milliseconds(kDirectoryHeartbeatMs));
  }
}

BlockDirectory::~BlockDirectory() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    stop_cv_.SignalAll();
  }
  heartbeat_.join();
  munmap(base_, bytes_);
  close(fd_);
}

DirectorySlot& BlockDirectory::Slot(uint32_t index) const {
  return *reinterpret_cast<DirectorySlot*>(base_ + header_.slots_offset +
                                           uint64_t{index} * sizeof(DirectorySlot));
}

uint32_t BlockDirectory::List(uint32_t ns, const BlockKey& key, const PageRun& pages) {
  if (pages.page_count() == 0) return kNotListed;  // nothing on the host to list
  const DirectoryKey dkey(key.data(), key.size());
  const uint32_t bucket = DirectoryBucket(ns, dkey, header_.bucket_count);
  MutexLock lock(&mu_);
  uint32_t index = kNotListed;
  for (uint32_t way = 0; way < kDirectoryWays; ++way) {
    if (!in_use_[bucket * kDirectoryWays + way]) {
      index = bucket * kDirectoryWays + way;
      break;
    }
  }
  if (index == kNotListed) {
    unlisted_.fetch_add(1, std::memory_order_relaxed);
    ++unlisted_now_;
    PublishComplete();
    return kNotListed;
  }
  in_use_[index] = true;
  // The pages are ours until Withdraw: their links are written before the
  // slot becomes valid (the even store below releases them).
  const std::vector<uint32_t>& list = pages.pages();
  for (size_t i = 0; i < list.size(); ++i) {
    next_page_[list[i]].store(i + 1 < list.size() ? list[i + 1] : kDirectoryNoPage,
                              std::memory_order_relaxed);
  }
  DirectorySlot& slot = Slot(index);
  slot.seq.fetch_add(1, std::memory_order_acq_rel);  // odd: changing
  slot.ns.store(ns, std::memory_order_relaxed);
  slot.first_page.store(list[0], std::memory_order_relaxed);
  slot.size.store(pages.size(), std::memory_order_relaxed);
  for (size_t w = 0; w < kDirectoryKeyWords; ++w) {
    slot.key[w].store(dkey.words[w], std::memory_order_relaxed);
  }
  slot.key_size.store(dkey.size, std::memory_order_relaxed);
  slot.seq.fetch_add(1, std::memory_order_release);  // even: valid
  listed_.fetch_add(1, std::memory_order_relaxed);
  return index;
}

void BlockDirectory::Withdraw(uint32_t index) {
  MutexLock lock(&mu_);
  DirectorySlot& slot = Slot(index);
  // A locked read-modify-write: on x86 it is ordered before every later
  // store of this process, the pages' next owner's included (even
  // non-temporal ones), so no reader can see new bytes with the old number.
  slot.seq.fetch_add(1, std::memory_order_seq_cst);  // odd: changing
  slot.key_size.store(0, std::memory_order_relaxed);
  slot.size.store(0, std::memory_order_relaxed);
  slot.seq.fetch_add(1, std::memory_order_seq_cst);  // even: empty
  in_use_[index] = false;
  listed_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace kvcache
