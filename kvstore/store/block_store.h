// The cache's tiers as one object: the GPU tier above the host arena
// (optional; kvstore/tiers/gpu_tier.h has its rules), the host arena, the NVMe
// tier below it (optional), the prefix-forest index over all three, the
// namespace table, and the rules that move blocks between host and NVMe:
//
//  - Room on the host. A block that needs pages first takes free ones, then
//    the pages of the coldest block that is also on NVMe (free to drop), then
//    (when the spiller is behind) asks the spill thread for room and waits
//    for its round, and only then drops the coldest unpinned leaf from the
//    whole cache. So a put waits for the disk rather than lose a block the
//    disk could keep, and NVMe I/O never runs on a put's (gRPC) thread.
//  - Spill. A background thread keeps the arena below its high watermark:
//    past it, the coldest blocks are written to NVMe (if admitted) and their
//    host pages freed until the low watermark. When NVMe is full, its
//    coldest NVMe-only leaves are dropped from the cache to make room.
//  - Promotion. A read of a block held only on NVMe reads it into new host
//    pages, verified, and keeps it there (its NVMe copy stays, so it can be
//    dropped again without a write). A block that fails verification is a
//    miss and is dropped with its subtree.
//  - Warm restart. Create indexes every block the NVMe tier holds, parents
//    before children; a record whose parent is gone is dropped.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_KVSTORE_STORE_BLOCK_STORE_H_
#define KVCACHE_KVSTORE_STORE_BLOCK_STORE_H_

#include <atomic>
#include <functional>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "gpu/device_memory.h"
#include "kvstore/index/block_index.h"
#include "kvstore/tiers/gpu_tier.h"
#include "kvstore/index/namespace_table.h"
#include "kvstore/store/tenant_quota.h"
#include "kvstore/tiers/nvme_tier.h"
#include "offload/host_arena.h"

namespace kvcache {

// Where the bytes of a read came from.
enum class ReadSource { kHost, kNvme, kGpu };

class StagedBlock;

class BlockStore {
 public:
  struct Options {
    HostArena::Options arena;
    int index_shards = 16;
    size_t max_namespaces = 1 << 16;
    // The NVMe tier, if any, and the arena fill (fractions of its capacity)
    // at which spilling starts and stops.
    std::optional<NvmeTier::Options> nvme;
    double spill_high = 0.90;
    double spill_low = 0.80;
    // Off in tests that call SpillToLowWatermark themselves.
    bool spill_in_background = true;
    // List host-resident blocks in a shared block directory, so same-host
    // workers copy them without a round trip (kvstore/index/block_directory.h).
    // Needs a sealed memfd arena; without one the store runs without it.
    bool block_directory = true;
    // The GPU tier, if wanted. Without a usable GPU the store runs without
    // it and gpu_unavailable() says why.
    std::optional<GpuTier::Options> gpu;
    // Tests on machines without a GPU: the GPU tier's pages live in host
    // memory (DeviceMemory::CreateHostBacked), so its rules can be tested.
    bool gpu_in_host_memory = false;
    // Drops remembered with their reason (kvstore/index/drop_record.h).
    size_t drop_record_entries = BlockIndex::kDefaultDropRecordEntries;
    // Tests only: the index keeps this many bits of each entry's hash, so
    // that unequal entries collide (block_index.h).
    int index_hash_bits = 64;
    // Most bytes each named tenant's blocks may hold, all tiers together
    // and per tier (kvstored --tenant_quotas). A tenant at a bound makes
    // room from its own coldest blocks: at its total or NVMe bound it drops
    // its coldest leaves there; at its host bound it first moves its coldest
    // host copies that have an NVMe copy off the host; at its GPU bound the
    // GPU tier demotes its coldest GPU copies. Pressure from anyone never
    // evicts a tier's copies of a tenant within its bound for that tier (or
    // its total). Tenants not named have no bounds and no such protection.
    TenantQuotas tenant_quotas;
  };

  // Errors from HostArena::Create; INVALID_ARGUMENT for bad watermarks,
  // NVMe or GPU options. An NVMe tier that cannot be opened (UNAVAILABLE) does not
  // fail: the store runs without it and nvme_unavailable() says why.
  static absl::StatusOr<std::unique_ptr<BlockStore>> Create(const Options& options);
  ~BlockStore();

  // Pages for `bytes`, making room as described above. RESOURCE_EXHAUSTED
  // if the block can never fit or everything left is pinned or staged.
  absl::StatusOr<PageRun> AllocateEvicting(uint64_t bytes);

  // A pin on a cached block with its bytes in host pages, copying them from
  // its GPU copy or NVMe if needed (*source, if given, says which); counted
  // as a hit. nullopt is a miss: not cached, or a copy that could not be
  // read or failed verification; *miss (if given) then says why.
  std::optional<BlockPin> PinForRead(NamespaceId ns, const BlockKey& key,
                                     ReadSource* source = nullptr, MissReason* miss = nullptr);
  // Why a block that is not cached is not: its recorded drop's reason, or
  // kNeverStored.
  MissReason WhyMissing(NamespaceId ns, const BlockKey& key) const;
  // A cached block's bytes, copied for another node (repair): from its host
  // pages, or read from its GPU or NVMe copy through pages taken for the
  // copy and freed at once. Counts no hit and moves nothing between tiers,
  // so copying a cold block out does not push a hot one from the host.
  // NOT_FOUND if it is not cached (or its only copy could not be read or
  // failed verification); RESOURCE_EXHAUSTED if no pages could be had.
  absl::StatusOr<std::string> CopyOut(NamespaceId ns, const BlockKey& key);
  // Called with every block a put made visible.
  void BlockStored(NamespaceId ns, const BlockKey& key) {
    if (gpu_ != nullptr) gpu_->OfferPut(ns, key);
  }

  // One spill pass down to the low watermark (the background thread runs
  // these; tests call it to be deterministic). Returns host bytes freed.
  uint64_t SpillToLowWatermark();

  // The cache as the front ends (kvstore/server/, kvstore/cluster/) ask it:
  // each forwards to the index (block_index.h says what it does), so no
  // handler reaches past the store into its parts.
  size_t LookupChain(NamespaceId ns, absl::Span<const BlockKey> chain,
                     std::vector<ChainBlock>* blocks) {
    return index_->LookupChain(ns, chain, blocks);
  }
  std::optional<BlockView> Inspect(NamespaceId ns, const BlockKey& key) {
    return index_->Inspect(ns, key);
  }
  std::optional<BlockPin> PinAsParent(NamespaceId ns, const BlockKey& key) {
    return index_->PinAsParent(ns, key);
  }
  std::shared_ptr<const DeviceBlock> ReadDeviceCopy(NamespaceId ns, const BlockKey& key) {
    return index_->ReadDeviceCopy(ns, key);
  }
  void RecordDirectReads(NamespaceId ns, const BlockKey& key, uint64_t reads) {
    index_->RecordDirectReads(ns, key, reads);
  }
  std::optional<Drop> FindDrop(NamespaceId ns, const BlockKey& key) const {
    return index_->FindDrop(ns, key);
  }
  const DropRecord& drops() const { return index_->drops(); }
  absl::flat_hash_map<NamespaceId, NamespaceUsage> UsageByNamespace() {
    return index_->UsageByNamespace();
  }
  std::vector<BlockView> Snapshot(absl::Span<const NamespaceId> namespaces) {
    return index_->Snapshot(namespaces);
  }
  absl::StatusOr<EvictCount> EvictKey(NamespaceId ns, const BlockKey& key, bool dry_run) {
    return index_->EvictKey(ns, key, dry_run);
  }
  absl::StatusOr<EvictCount> EvictSubtree(NamespaceId ns, const BlockKey& key, bool dry_run) {
    return index_->EvictSubtree(ns, key, dry_run);
  }
  EvictCount EvictNamespaces(absl::Span<const NamespaceId> namespaces, bool dry_run) {
    return index_->EvictNamespaces(namespaces, dry_run);
  }
  // Makes a staged block visible (StagedBlock::Commit).
  absl::StatusOr<InsertOutcome> Commit(StagedBlock& staged);
  // The same for a block of `tenant`, within its total and host bounds:
  // its own coldest blocks make room first (Options::tenant_quotas).
  // RESOURCE_EXHAUSTED if they cannot (nothing is dropped then beyond what
  // was tried).
  absl::StatusOr<InsertOutcome> CommitWithinQuota(const std::string& tenant, StagedBlock& staged);
  // What `tenant`'s blocks hold now, in all and per tier; and its quota
  // (no bounds: all 0).
  NamespaceUsage TenantUsage(absl::string_view tenant);
  TenantQuota QuotaOf(absl::string_view tenant) const;
  uint64_t host_blocks() const { return index_->host_blocks(); }
  uint64_t device_blocks() const { return index_->device_blocks(); }

  // The host arena, read-only: its sizes, backing and fd (shared with
  // same-host clients).
  const HostArena& arena() const { return *arena_; }
  // The index itself: for the store's own package, its tiers and tests.
  BlockIndex& index() { return *index_; }
  NamespaceTable& namespaces() { return namespaces_; }
  // The NVMe tier, or null.
  NvmeTier* nvme() { return nvme_.get(); }
  // The block directory, or null; and why there is none ("not enabled", or
  // the error creating it).
  BlockDirectory* directory() { return directory_.get(); }
  const std::string& directory_unavailable() const { return directory_unavailable_; }
  // Why there is no NVMe tier ("not configured", or the error opening it).
  const std::string& nvme_unavailable() const { return nvme_unavailable_; }
  // The GPU tier, or null; and why there is none.
  GpuTier* gpu() { return gpu_.get(); }
  const std::string& gpu_unavailable() const { return gpu_unavailable_; }

  // Bytes held by readers' pins / by unfinished puts.
  std::atomic<uint64_t>& pinned_bytes() { return pinned_bytes_; }
  std::atomic<uint64_t>& staged_bytes() { return staged_bytes_; }
  uint64_t evicted_blocks() const { return evicted_blocks_.load(std::memory_order_relaxed); }
  uint64_t spilled_blocks() const { return spilled_blocks_.load(std::memory_order_relaxed); }
  uint64_t promoted_blocks() const { return promoted_blocks_.load(std::memory_order_relaxed); }
  uint64_t nvme_evicted_blocks() const { return nvme_evicted_.load(std::memory_order_relaxed); }
  // Blocks found on NVMe at start, and how long indexing them took.
  uint64_t restored_blocks() const { return restored_blocks_; }
  double restore_seconds() const { return restore_seconds_; }

 private:
  BlockStore(std::unique_ptr<HostArena> arena, const Options& options);
  void RestoreFromNvme();
  // InstallHostCopy, with the reason if the block went meanwhile.
  std::optional<BlockPin> Installed(NamespaceId ns, const BlockKey& key, uint64_t checksum,
                                    PageRun pages, MissReason* miss);
  // Writes blocks to NVMe in one batch, dropping NVMe-only leaves while it
  // is full. One status per block: OK if it is on NVMe afterwards.
  std::vector<absl::Status> WriteToNvme(absl::Span<const NvmeTier::BlockRef> batch);
  // Spills the coldest blocks until the arena holds at most `target_used`
  // bytes or `max_blocks` host copies were freed. Returns the bytes freed.
  uint64_t Spill(uint64_t target_used, size_t max_blocks);
  void SpillLoop();
  // Asks the spill thread for at least `bytes` of room and waits (up to 2 s)
  // for a round that starts after the request (the I/O and its completions
  // stay on that thread). True if the round freed anything or there is room
  // now. Without the thread, spills one block here.
  bool SpillForRoom(uint64_t bytes) ABSL_LOCKS_EXCLUDED(spill_mu_);
  // Pressure eviction of one leaf of `residency`: the coldest of all, or
  // with quotas the coldest whose tenant is not within its bound for that
  // tier (block_store_quotas.cc).
  std::optional<uint64_t> EvictForRoom(LeafResidency residency = LeafResidency::kOnHost);
  // The namespaces of `tenant`, as an index filter.
  std::function<bool(NamespaceId)> TenantFilter(const std::string& tenant);
  // The namespaces pressure on `tier` may take copies from: those of tenants
  // not within their bound for that tier (its own, else the total). Null
  // (all) without quotas.
  std::function<bool(NamespaceId)> Unshielded(LeafResidency tier);
  // Before writing `bytes` of ns's block to NVMe, with `pending` more of its
  // tenant's bytes on their way there: drops the tenant's own coldest
  // NVMe-only leaves until they fit its NVMe bound. False if they cannot.
  bool MakeNvmeRoom(NamespaceId ns, uint64_t bytes, uint64_t pending);
  // After a copy came up to the host (a promotion from NVMe or the GPU):
  // moves the tenant's coldest host copies off the host while it is over
  // its host bound.
  void TrimHostToQuota(NamespaceId ns);
  // The tenants' GPU bounds, for the GPU tier (its TenantRoom); empty
  // without quotas.
  GpuTier::TenantRoom GpuTenantRoom();
  uint64_t DeviceExcess(NamespaceId ns, uint64_t bytes);

  const double spill_high_, spill_low_;
  const TenantQuotas tenant_quotas_;
  // One per tenant with a quota, taken while its room is made and used (a
  // commit, a spill to NVMe, a promotion's trim), so two of its commits
  // cannot both count the same room; other tenants' run side by side. Made
  // at construction and never changed.
  const absl::flat_hash_map<std::string, std::unique_ptr<Mutex>> quota_locks_;
  Mutex& QuotaLockOf(const std::string& tenant) const { return *quota_locks_.at(tenant); }
  static absl::flat_hash_map<std::string, std::unique_ptr<Mutex>> QuotaLocks(
      const TenantQuotas& quotas);
  std::atomic<uint64_t> pinned_bytes_{0};
  std::atomic<uint64_t> staged_bytes_{0};
  std::atomic<uint64_t> evicted_blocks_{0};
  std::atomic<uint64_t> spilled_blocks_{0};
  std::atomic<uint64_t> promoted_blocks_{0};
  std::atomic<uint64_t> nvme_evicted_{0};
  uint64_t restored_blocks_ = 0;
  double restore_seconds_ = 0;
  // Declared after the counters: the index's pins count into pinned_bytes_.
  std::unique_ptr<HostArena> arena_;
  // Before the index, which withdraws blocks from it.
  std::unique_ptr<BlockDirectory> directory_;
  std::string directory_unavailable_ = "not enabled";
  NamespaceTable namespaces_;
  std::unique_ptr<NvmeTier> nvme_;
  std::string nvme_unavailable_ = "not configured";
  // Before the index, whose GPU copies live in it.
  std::unique_ptr<DeviceMemory> gpu_memory_;
  std::string gpu_unavailable_ = "not configured";
  std::unique_ptr<BlockIndex> index_;
  // After the index, which it moves blocks in; stopped first.
  std::unique_ptr<GpuTier> gpu_;

  Mutex spill_mu_;
  CondVar spill_wake_;
  CondVar spill_done_;
  bool stopping_ ABSL_GUARDED_BY(spill_mu_) = false;
  uint64_t room_wanted_ ABSL_GUARDED_BY(spill_mu_) = 0;
  uint64_t rounds_started_ ABSL_GUARDED_BY(spill_mu_) = 0;
  uint64_t rounds_done_ ABSL_GUARDED_BY(spill_mu_) = 0;  // the last round finished
  uint64_t last_round_freed_ ABSL_GUARDED_BY(spill_mu_) = 0;
  std::thread spill_thread_;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_STORE_BLOCK_STORE_H_
