// The GPU tier: the top of the cache's hierarchy, blocks in GPU pages
// (gpu/device_memory.h). Blocks move on the tier's own thread, never on a
// put's or a fetch's:
//
//  - Landing. A committed put is queued; the mover copies its host pages
//    into GPU pages and frees them, so the block lives on the GPU. A put is
//    admitted when the pool has pages free for it; otherwise it stays on the
//    host, as without a GPU.
//  - Promotion. A host block read promote_after_hits times or more is
//    queued the same way, and keeps its host copy.
//  - Demotion. Past the high watermark (of pool pages in use), the coldest
//    GPU copies go until the low one. A copy with a copy below it is just
//    freed; a block that lives only on the GPU is first copied into host
//    pages (D2H on the copy engine's stream), taken as a put takes them.
//  - Reading. A block that lives only on the GPU is copied into new host
//    pages on the reader's thread (CopyToHost), like a promotion from NVMe,
//    and keeps its GPU copy.
//  - Every copy down is hashed and checked against the block's checksum
//    before anyone can read it, as an NVMe read is: a GPU copy that does
//    not match is dropped with the block's subtree (a miss).
//    (Uploads copy host pages that were verified when they were stored.)
//  - Failure. A copy that fails (a GPU error) disables the tier for good:
//    nothing more is admitted, GPU copies with a copy below are freed, and
//    blocks that lived only on the GPU are dropped with their subtrees
//    (misses). The host and NVMe tiers keep serving.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_KVSTORE_TIERS_GPU_TIER_H_
#define KVCACHE_KVSTORE_TIERS_GPU_TIER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "gpu/device_memory.h"
#include "kvstore/index/block_index.h"
#include "offload/host_arena.h"

namespace kvcache {

class GpuTier {
 public:
  struct Options {
    DevicePagePool::Options pool;
    // Fractions of the pool's pages in use at which demotion starts / stops.
    double high = 0.90;
    double low = 0.80;
    uint64_t promote_after_hits = 2;
    size_t max_queued = 4096;  // offers past this are not admitted
    // Off in tests that call MoveOnce themselves.
    bool move_in_background = true;
  };
  // Host pages for a block: BlockStore::AllocateEvicting.
  using HostAllocator = std::function<absl::StatusOr<PageRun>(uint64_t bytes)>;

  // Per-tenant GPU bounds (BlockStore's tenant quotas); all empty: none.
  struct TenantRoom {
    // How many bytes of ns's tenant must leave the GPU before `bytes` more
    // of its may land (0: they fit).
    std::function<uint64_t(NamespaceId ns, uint64_t bytes)> excess;
    // The namespaces of ns's tenant.
    std::function<std::function<bool(NamespaceId)>(NamespaceId ns)> tenant_of;
    // The namespaces whose GPU copies pressure may demote (null: all).
    std::function<std::function<bool(NamespaceId)>()> demotable;
  };

  // INVALID_ARGUMENT for bad watermarks. `memory` and `index` are not
  // owned; memory outlives the index, whose GPU copies live in it, and the
  // index outlives the tier. With `room`, a block lands or is promoted only
  // once its tenant's own coldest GPU copies made room under its bound (else
  // it stays below, counted in not_admitted), and pressure demotes only
  // copies `room.demotable` accepts.
  static absl::StatusOr<std::unique_ptr<GpuTier>> Create(const Options& options,
                                                         DeviceMemory& memory, BlockIndex& index,
                                                         HostAllocator allocate_host,
                                                         TenantRoom room = {});
  // Stops the mover. REQUIRES: no CopyToHost is running.
  ~GpuTier();

  // Queues a block just put / a host block read promote_after_hits()
  // times or more (and not on the GPU) for the mover.
  void OfferPut(NamespaceId ns, const BlockKey& key) { Offer(ns, key, true); }
  void OfferHit(NamespaceId ns, const BlockKey& key) { Offer(ns, key, false); }
  uint64_t promote_after_hits() const { return options_.promote_after_hits; }

  // The bytes of the block's GPU copy in new host pages, verified.
  // NOT_FOUND if it has no GPU copy; the allocator's error; DATA_LOSS if
  // they do not match its checksum; INTERNAL if the copy failed (the tier
  // is then disabled); UNAVAILABLE once disabled.
  absl::StatusOr<PageRun> CopyToHost(NamespaceId ns, const BlockKey& key);

  // One round of the mover: demotion if past the high watermark, then the
  // queued offers. Returns the blocks it moved or dropped.
  size_t MoveOnce() ABSL_LOCKS_EXCLUDED(mu_);

  // Why the tier was disabled, or empty.
  std::string failure() const ABSL_LOCKS_EXCLUDED(mu_);
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  DeviceMemory& memory() { return memory_; }
  uint64_t capacity_bytes() const;
  uint64_t used_bytes() const;
  uint64_t landed_blocks() const { return landed_.load(std::memory_order_relaxed); }
  uint64_t promoted_blocks() const { return promoted_.load(std::memory_order_relaxed); }
  uint64_t demoted_blocks() const { return demoted_.load(std::memory_order_relaxed); }
  uint64_t copied_to_host() const { return copied_to_host_.load(std::memory_order_relaxed); }
  uint64_t not_admitted() const { return not_admitted_.load(std::memory_order_relaxed); }

 private:
  struct Offered {
    NamespaceId ns;
    BlockKey key;
    bool put;
    // A put already on the GPU whose host copy was held; retried until
    // the copy can be freed, at most kMaxDeferrals rounds.
    bool drop_host_copy = false;
    int deferrals = 0;
  };
  GpuTier(const Options& options, DeviceMemory& memory, BlockIndex& index,
          HostAllocator allocate_host, TenantRoom room);
  void Offer(NamespaceId ns, const BlockKey& key, bool put) ABSL_LOCKS_EXCLUDED(mu_);
  // Copies `device` into `pages` and checks them against its checksum:
  // INTERNAL (the tier is then disabled) or DATA_LOSS on failure.
  absl::Status CopyDown(const DeviceBlock& device, PageRun& pages);
  // Copies one offered block up; true if it moved.
  bool Upload(const Offered& offer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(move_mu_);
  // Frees GPU pages down to the low watermark; returns blocks moved.
  size_t Demote();
  // Frees one candidate's GPU copy, copying it down first if it has no copy
  // below. Returns whether anything changed (a copy freed, or a block that
  // could not be kept dropped); *freed counts copies freed.
  bool DemoteOne(DeviceCandidate& c, size_t* freed);
  // Demotes ns's tenant's own coldest GPU copies until `bytes` more of its
  // fit its bound. False if they cannot.
  bool MakeTenantRoom(NamespaceId ns, uint64_t bytes);
  // After a failure: frees every GPU copy, dropping blocks that had no
  // other.
  size_t DropEverything();
  void Fail(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  void MoveLoop() ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;
  DeviceMemory& memory_;
  BlockIndex& index_;
  const HostAllocator allocate_host_;
  const TenantRoom room_;

  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> landed_{0};
  std::atomic<uint64_t> promoted_{0};
  std::atomic<uint64_t> demoted_{0};
  std::atomic<uint64_t> copied_to_host_{0};
  std::atomic<uint64_t> not_admitted_{0};

  mutable Mutex mu_;
  CondVar wake_;
  std::deque<Offered> offers_ ABSL_GUARDED_BY(mu_);
  std::string failure_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Mutex move_mu_;  // one round at a time (the thread, or a test)
  // Landed puts whose host copy someone held (a child's put pins its
  // parent), retried next round.
  std::vector<Offered> deferred_ ABSL_GUARDED_BY(move_mu_);
  std::thread mover_;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_TIERS_GPU_TIER_H_
