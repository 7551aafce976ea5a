// The daemon's side of the block directory (proto/block_directory_layout.h):
// the shared table where host-resident blocks are listed so that local
// workers can copy them out of the arena without a round trip.
//
// The block index lists a block when it gains host pages and withdraws it,
// under the block's shard lock, before those pages can be freed: when a
// block is evicted, spilled to NVMe only, or dropped by an operator. A
// reader whose copy overlapped a withdrawal sees the slot's sequence number
// change and discards its copy. Listing is best effort: a block whose bucket
// is full is not listed, and readers fetch it through a lease as before.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_KVSTORE_INDEX_BLOCK_DIRECTORY_H_
#define KVCACHE_KVSTORE_INDEX_BLOCK_DIRECTORY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "key/block_key.h"
#include "common/mutex.h"
#include "offload/host_arena.h"
#include "proto/block_directory_layout.h"

namespace kvcache {

class BlockDirectory {
 public:
  static constexpr uint32_t kNotListed = UINT32_MAX;

  // A directory for `arena`'s pages, in a sealed memfd. At most 4 slots per
  // arena page and at most 1/64 of the arena's bytes. Its presence table has
  // about 4 counters for each of `max_blocks` (the most blocks all tiers
  // can hold; 4 bytes each, at most 64 MiB). UNAVAILABLE if the memfd
  // cannot be made, mapped or sealed.
  static absl::StatusOr<std::unique_ptr<BlockDirectory>> Create(const HostArena& arena,
                                                                uint64_t max_blocks);
  ~BlockDirectory();
  BlockDirectory(const BlockDirectory&) = delete;
  BlockDirectory& operator=(const BlockDirectory&) = delete;

  // The memfd local workers map read-only, and its size.
  int fd() const { return fd_; }
  uint64_t bytes() const { return bytes_; }

  // Lists a block whose bytes are `pages` (of this directory's arena).
  // Returns its slot, or kNotListed if its bucket is full (or `pages` is
  // empty: a block held only on NVMe has nothing to list). The caller keeps
  // the pages unchanged and allocated until it has called Withdraw(slot).
  uint32_t List(uint32_t ns, const BlockKey& key, const PageRun& pages) ABSL_LOCKS_EXCLUDED(mu_);
  // Withdraws a listed block. Once this returns, a reader can no longer
  // validate a copy of it (even one it started before), so its pages may be
  // freed. REQUIRES: slot came from List and was not withdrawn since.
  void Withdraw(uint32_t slot) ABSL_LOCKS_EXCLUDED(mu_);

  // Counts a block into (+1) or out of (-1) the presence table: +1 before
  // it enters the index, -1 once it has left (any tier, listed or not).
  void CountPresent(uint32_t ns, const BlockKey& key, int delta);
  uint32_t presence_count() const { return header_.presence_count; }

  // Says in the shared header whether every block the daemon caches is
  // listed (proto/block_directory_layout.h): the store calls it once its
  // tiers are known (`tiers_listable`: no tier holds blocks the directory
  // cannot list), and the word stays 0 while any cached block is left out
  // for a full bucket (until ForgetUnlisted for each of them).
  void SetComplete(bool tiers_listable) ABSL_LOCKS_EXCLUDED(mu_);
  // A block that List left out for a full bucket is no longer cached (or no
  // longer on the host). REQUIRES: one call per such List.
  void ForgetUnlisted() ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks listed now, and blocks left unlisted because their bucket was full.
  uint64_t listed() const { return listed_.load(std::memory_order_relaxed); }
  uint64_t unlisted() const { return unlisted_.load(std::memory_order_relaxed); }

 private:
  BlockDirectory(int fd, uint8_t* base, uint64_t bytes, const DirectoryHeader& header);
  DirectorySlot& Slot(uint32_t index) const;

  const int fd_;
  uint8_t* const base_;  // mapped writable (ours, made before sealing)
  const uint64_t bytes_;
  const DirectoryHeader header_;
  std::atomic<uint32_t>* const next_page_;
  std::atomic<uint32_t>* const presence_;
  Mutex mu_;
  std::vector<bool> in_use_ ABSL_GUARDED_BY(mu_);  // per slot
  std::atomic<uint64_t> listed_{0};
  std::atomic<uint64_t> unlisted_{0};
  bool tiers_listable_ ABSL_GUARDED_BY(mu_) = false;
  // Renews the header's heartbeat until the directory is destroyed.
  void Beat() ABSL_LOCKS_EXCLUDED(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  CondVar stop_cv_;
  std::thread heartbeat_;
  uint64_t unlisted_now_ ABSL_GUARDED_BY(mu_) = 0;  // cached, host-resident, not listed
  // Writes the header's complete word from the two fields above.
  void PublishComplete() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_INDEX_BLOCK_DIRECTORY_H_
