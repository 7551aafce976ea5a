// The block index: a sharded prefix forest of cached blocks.
//
// Invariants:
//  1. Every block records its parent; a block is inserted only while its
//     parent is cached, so a chain that is cached is cached from its root.
//  2. Pressure eviction drops leaves only (blocks with no cached children),
//     least recently used first, so what is cached stays prefix-closed.
//     Blocks put with evict_first go before all others until found.
//  3. A pinned block (a BlockPin exists) is never chosen by pressure
//     eviction. Operator eviction may unlink it; its pages then live until
//     the last pin is gone, and no new reader can find it.
//  4. A block lives on the host (arena pages), on NVMe, or on both. Moving
//     between tiers never changes the forest: spilling drops only the host
//     copy of a block already on NVMe, and promotion gives an NVMe-only
//     block host pages again. Dropping from the whole cache stays leaf-first.
//  5. With a block directory, a block is listed there while its entry has
//     host pages, and withdrawn (under the shard lock) before the entry lets
//     go of them, so a local worker's direct copy of a block whose pages are
//     freed or reused fails its check.
//  6. A block may also have a copy in GPU pages (kvstore/tiers/gpu_tier.h). The
//     GPU copy is dropped only while the block has a copy below it (host
//     pages or NVMe), or when the same call gives it host pages (a
//     demotion), or with the whole block; so a block that lives only on the
//     GPU is never lost by moving between tiers.
//
// Each shard has one mutex over its map and its recency lists (leaves by
// residency; blocks with host pages; blocks with a GPU copy). Only
// LookupChain holds two shard locks at once, and it takes them in shard
// order; everything else holds one: a child and its parent may live in
// different shards, and the parent's child count is updated under the
// parent's own lock, after the child's lock is released.
//
// Recency is approximate by design, within a bound: a touch moves a block
// to the newest end of its lists only when more than 1/kRefreshFraction of
// all cached blocks have moved since it last did (so one that is already
// among the newest stays put, and a lookup of a hot chain writes nothing),
// and recency_list.h says where a block lands that joins a list late.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_KVSTORE_INDEX_BLOCK_INDEX_H_
#define KVCACHE_KVSTORE_INDEX_BLOCK_INDEX_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "key/block_key.h"
#include "common/mutex.h"
#include "kvstore/index/block_directory.h"
#include "kvstore/index/cached_block.h"
#include "kvstore/index/device_block.h"
#include "kvstore/index/drop_record.h"
#include "kvstore/index/miss_reason.h"
#include "kvstore/index/namespace_table.h"
#include "kvstore/index/recency_list.h"

namespace kvcache {

enum class InsertOutcome { kStored, kAlreadyCached, kParentMissing };

// What one block looks like from outside, for Lookup, Inspect and List.
struct BlockView {
  NamespaceId ns = 0;
  BlockMeta meta;
  uint32_t children = 0;
  uint64_t hits = 0;
  int64_t last_access_micros = 0;
  uint32_t readers = 0;  // pins other than the index's own reference
  bool on_host = true;
  bool on_nvme = false;
  bool on_gpu = false;
};

// One block of a looked-up chain.
struct ChainBlock {
  uint64_t size = 0;
  bool on_host = true;
  bool on_gpu = false;
};

// A host-resident block the spiller may write to NVMe or free. It holds no
// reference: a spiller that held its whole candidate list would keep those
// blocks from being evicted while it waits on the disk.
struct SpillCandidate {
  NamespaceId ns = 0;
  BlockKey key;
  uint64_t size = 0;
  const CachedBlock* expected = nullptr;   // identity only; never dereferenced
  std::weak_ptr<const CachedBlock> block;  // lock() to read its pages
  bool on_nvme = false;
  uint64_t hits = 0;
};

// A block with a GPU copy that the GPU tier may demote: the candidate holds
// the copy (so its pages stay valid while it is copied to the host).
struct DeviceCandidate {
  NamespaceId ns = 0;
  BlockKey key;
  uint64_t size = 0;
  std::shared_ptr<const DeviceBlock> device;
  bool has_copy_below = false;  // host pages or NVMe: dropping it loses nothing
};

// Which leaves pressure eviction may drop.
enum class LeafResidency {
  kOnHost,      // leaves with host pages: dropping one frees arena pages
  kNvmeOnly,    // leaves held only on NVMe: dropping one frees NVMe space
  kDeviceOnly,  // leaves without host pages that have a GPU copy
};

struct EvictCount {
  uint64_t blocks = 0;
  uint64_t bytes = 0;
};

// What one namespace's blocks hold: in all, and in each tier (a block with
// copies in several tiers counts in each).
struct NamespaceUsage {
  uint64_t blocks = 0;
  uint64_t bytes = 0;
  uint64_t host_bytes = 0;
  uint64_t nvme_bytes = 0;
  uint64_t device_bytes = 0;
};

class BlockIndex {
 public:
  // `shards`: 1 to kMaxShards (clamped). `pinned_bytes` is where BlockPins
  // count; not owned.
  // The last `drop_record_entries` blocks dropped or refused are remembered
  // with their reason (drop_record.h).
  // `hash_bits` below 64 keeps only that many low bits of every entry's hash
  // (and puts every entry in shard 0 below 49): for tests that make distinct
  // (namespace, key) pairs collide on purpose, to show that only equal ones
  // ever meet.
  BlockIndex(int shards, std::atomic<uint64_t>* pinned_bytes,
             size_t drop_record_entries = kDefaultDropRecordEntries, int hash_bits = 64);
  static constexpr size_t kDefaultDropRecordEntries = 1 << 16;
  static constexpr int kMaxShards = 64;  // a chain's shards fit one bit mask
  BlockIndex(const BlockIndex&) = delete;
  BlockIndex& operator=(const BlockIndex&) = delete;

  // Counts how many leading keys of `chain` are cached in any tier (stopping
  // at the first miss), marks them used, and appends each one's size and
  // tier to `blocks` if non-null. The chain is walked kLookupSegment keys
  // at a time, with each shard those keys fall in locked once (in shard
  // order), not once per key.
  size_t LookupChain(NamespaceId ns, absl::Span<const BlockKey> chain,
                     std::vector<ChainBlock>* blocks);

  // A pin on a cached block, marked used and counted as a hit; nullopt if
  // the block is not cached. For a block without host pages the pin carries
  // its metadata and no pages (block().on_host() is false): the caller
  // copies it in and calls InstallHostCopy. If `hits` / `on_gpu` are given
  // they get its hit count (this one included) and whether it has a GPU copy.
  std::optional<BlockPin> Pin(NamespaceId ns, const BlockKey& key, uint64_t* hits = nullptr,
                              bool* on_gpu = nullptr);
  // The same for a put that is about to add a child: no hit is counted.
  std::optional<BlockPin> PinAsParent(NamespaceId ns, const BlockKey& key);

  // Makes a verified block visible. The parent (meta.parent, empty for a
  // root) must be cached; root, depth come from it. On any outcome other than
  // kStored the pages are freed. Empty `pages` with on_nvme inserts a block
  // held only on NVMe (a warm restart).
  InsertOutcome Insert(NamespaceId ns, BlockMeta meta, PageRun pages, bool on_nvme = false);

  // Drops the least recently used unpinned leaf of the given residency from
  // the whole cache (recorded as kEvictedPressure). Returns its size, or
  // nullopt if there is none.
  std::optional<uint64_t> EvictOneLeaf(LeafResidency residency = LeafResidency::kOnHost);
  // The same among the leaves of the namespaces `evictable` accepts (per-
  // tenant quotas). It may walk a shard's whole leaf list past leaves it
  // refuses, so it costs more than the plain one.
  std::optional<uint64_t> EvictOneLeafOf(LeafResidency residency,
                                         const std::function<bool(NamespaceId)>& evictable);

  // Called with every block dropped from the index while it had an NVMe
  // copy, under the block's shard lock (so a re-put of the key cannot race
  // the removal). Set once, before the index is shared.
  using NvmeDropListener = std::function<void(NamespaceId, const BlockMeta&)>;
  void SetNvmeDropListener(NvmeDropListener listener) { nvme_drop_listener_ = std::move(listener); }
  // Lists host-resident blocks in `directory` (not owned; outlives the
  // index). Set once, before anything is inserted.
  void SetDirectory(BlockDirectory* directory) { directory_ = directory; }

  // Marks a block used and counts `reads` hits: copies that local workers
  // made through the block directory and reported afterwards. No-op if the
  // block is gone.
  void RecordDirectReads(NamespaceId ns, const BlockKey& key, uint64_t reads);

  // Tiering. Up to `max` of the least recently used unpinned blocks that
  // have host pages, coldest first.
  std::vector<SpillCandidate> ColdestOnHost(size_t max);
  // Records that `block` (still the indexed copy) now has an NVMe copy.
  // False if the index holds something else under its key now.
  bool MarkOnNvme(NamespaceId ns, const CachedBlock& block);
  // Frees the host pages of the block under `key` if it is still `expected`
  // (compared, never dereferenced), is on NVMe and has no reader. Returns the
  // bytes freed (0 if not).
  uint64_t DropHostCopy(NamespaceId ns, const BlockKey& key, const CachedBlock* expected);
  // Frees the host pages of the least recently used unpinned block that is
  // also on NVMe. Returns the bytes freed, or nullopt if there is none.
  std::optional<uint64_t> DropColdestHostCopy() { return DropColdestHostCopyOf(nullptr); }
  // The same among the blocks of the namespaces `droppable` accepts (null:
  // all): a tenant over its host quota demotes its own blocks to NVMe.
  std::optional<uint64_t> DropColdestHostCopyOf(
      const std::function<bool(NamespaceId)>& droppable);
  // Gives a block without host pages the `pages` read back for it (from
  // NVMe or its GPU copy, verified against `checksum`) and pins it. If
  // another reader installed a copy first, `pages` are freed and that copy
  // is pinned. nullopt if the block is no longer cached, or if the entry
  // now holds other bytes (a re-put of the key with another checksum).
  std::optional<BlockPin> InstallHostCopy(NamespaceId ns, const BlockKey& key, uint64_t checksum,
                                          PageRun pages);

  // The GPU tier. A hold on the host copy of a block to upload; null if the
  // block is gone, has no host pages, or already has a GPU copy. Marks
  // nothing used.
  std::shared_ptr<const CachedBlock> HostCopyToUpload(NamespaceId ns, const BlockKey& key);
  // Gives the block `device`, its bytes already copied from `source` (the
  // hold HostCopyToUpload returned; released here). False, and `device`
  // freed, if the block changed meanwhile.
  bool InstallDeviceCopy(NamespaceId ns, const BlockKey& key,
                         std::shared_ptr<const CachedBlock> source,
                         std::shared_ptr<const DeviceBlock> device);
  // Frees the host pages of a block that has a GPU copy, unless someone
  // holds them (a reader, or a child's put): how a put lands on the GPU.
  // True once the block has no host pages (or is gone).
  bool DropHostCopyAboveDevice(NamespaceId ns, const BlockKey& key);
  // A hold on the block's GPU copy; null if it has none.
  std::shared_ptr<const DeviceBlock> DeviceCopy(NamespaceId ns, const BlockKey& key);
  // The same for a reader that copies out of the GPU copy itself (a
  // same-host worker's GPU lease): marked used and counted as a hit.
  std::shared_ptr<const DeviceBlock> ReadDeviceCopy(NamespaceId ns, const BlockKey& key);
  // Up to `max` of the least recently used blocks with a GPU copy that no
  // one else holds, coldest first.
  // With `of`, only blocks of the namespaces it accepts (a tenant's).
  std::vector<DeviceCandidate> ColdestOnDevice(
      size_t max, const std::function<bool(NamespaceId)>& of = nullptr);
  // Frees the GPU copy `held` (released here) if it is still the block's
  // and no one else holds it. `host_pages`, if given, hold its bytes (the
  // caller copied them down) and become its host copy when it has none.
  // Without them the block must already have a copy below. True if the
  // GPU copy is gone.
  bool DropDeviceCopy(NamespaceId ns, const BlockKey& key, std::shared_ptr<const DeviceBlock> held,
                      PageRun host_pages = PageRun());

  // Operator eviction. EvictKey: NOT_FOUND if absent, FAILED_PRECONDITION if
  // the block has cached children (use EvictSubtree). With dry_run nothing
  // changes and the count says what would be dropped. Each dropped block is
  // recorded with `reason`; EvictSubtree records the descendants of a block
  // dropped for any reason but an operator's as kParentMissing.
  absl::StatusOr<EvictCount> EvictKey(NamespaceId ns, const BlockKey& key, bool dry_run,
                                      MissReason reason = MissReason::kEvictedOperator);
  absl::StatusOr<EvictCount> EvictSubtree(NamespaceId ns, const BlockKey& key, bool dry_run,
                                          MissReason reason = MissReason::kEvictedOperator);
  EvictCount EvictNamespaces(absl::Span<const NamespaceId> namespaces, bool dry_run);

  // The newest recorded drop of a block that is not cached, or nullopt
  // (never stored, or dropped before the record reaches back).
  std::optional<Drop> FindDrop(NamespaceId ns, const BlockKey& key) const {
    return drops_.Find(ns, key);
  }
  const DropRecord& drops() const { return drops_; }
  // Blocks and bytes cached per namespace, in all and per tier (namespaces
  // that hold nothing are left out), as of one instant: every shard is
  // locked while they are summed.
  absl::flat_hash_map<NamespaceId, NamespaceUsage> UsageByNamespace();

  std::optional<BlockView> Inspect(NamespaceId ns, const BlockKey& key);
  // Every block of the given namespaces (a snapshot; order unspecified).
  std::vector<BlockView> Snapshot(absl::Span<const NamespaceId> namespaces);

  uint64_t blocks() const { return blocks_.load(std::memory_order_relaxed); }
  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  // Blocks with host pages (the rest are only on NVMe).
  uint64_t host_blocks() const { return host_blocks_.load(std::memory_order_relaxed); }
  // Blocks with a GPU copy.
  uint64_t device_blocks() const { return device_blocks_.load(std::memory_order_relaxed); }

 private:
  struct EntryKey {
    NamespaceId ns;
    BlockKey key;
    friend bool operator==(const EntryKey& a, const EntryKey& b) {
      return a.ns == b.ns && a.key == b.key;
    }
    friend bool operator<(const EntryKey& a, const EntryKey& b) {
      return a.ns != b.ns ? a.ns < b.ns : a.key < b.key;
    }
    template <typename H>
    friend H AbslHashValue(H h, const EntryKey& k) {
      return H::combine(std::move(h), k.ns, k.key);
    }
  };
  // absl::Hash of the key, with only its low `bits` kept (all 64 in
  // production).
  struct EntryHash {
    uint64_t mask = ~uint64_t{0};
    size_t operator()(const EntryKey& k) const { return absl::Hash<EntryKey>{}(k) & mask; }
  };
  struct Entry {
    EntryKey key;
    // Never null; holds no pages while the block lives only on NVMe or GPU.
    std::shared_ptr<const CachedBlock> block;
    std::shared_ptr<const DeviceBlock> device;  // its GPU copy, if any
    bool on_nvme = false;
    uint32_t children = 0;
    uint64_t hits = 0;
    uint64_t tick = 0;  // logical recency: when it last moved to the newest end
    int64_t last_access_micros = 0;
    uint32_t directory_slot = BlockDirectory::kNotListed;
    bool left_unlisted = false;  // on the host, but its directory bucket was full
    // A leaf is in one of the three leaf lists, so they share one member.
    RecencyLinks<Entry> leaf_links;
    RecencyLinks<Entry> host_links;
    RecencyLinks<Entry> device_links;
  };
  using TickOrder = RecencyList<Entry>;
  struct Shard {
    explicit Shard(EntryHash hash) : entries(0, hash) {}
    Mutex mu;
    // Nodes, so that an entry stays where its list links point.
    absl::node_hash_map<EntryKey, Entry, EntryHash> entries ABSL_GUARDED_BY(mu);
    // Coldest first: leaves with host pages, leaves with a GPU copy but no
    // host pages, leaves only on NVMe; every entry with host pages (what the
    // spiller demotes) and every entry with a GPU copy (what the GPU tier
    // demotes).
    TickOrder host_leaves ABSL_GUARDED_BY(mu){&Entry::leaf_links};
    TickOrder device_leaves ABSL_GUARDED_BY(mu){&Entry::leaf_links};
    TickOrder nvme_leaves ABSL_GUARDED_BY(mu){&Entry::leaf_links};
    TickOrder on_host ABSL_GUARDED_BY(mu){&Entry::host_links};
    TickOrder on_device ABSL_GUARDED_BY(mu){&Entry::device_links};
    // What this shard's entries hold, per namespace (for per-tenant usage
    // and quotas). Link and Unlink keep the per-tier bytes.
    absl::flat_hash_map<NamespaceId, NamespaceUsage> usage ABSL_GUARDED_BY(mu);
  };

  // The hash the shards' tables use; the shard is chosen from its top bits.
  size_t HashOf(const EntryKey& k) const { return hash_(k); }
  size_t ShardIndexOfHash(size_t hash) const;
  size_t ShardIndex(const EntryKey& k) const;
  Shard& ShardOf(const EntryKey& k) { return *shards_[ShardIndex(k)]; }
  // LookupChain's step: up to kLookupSegment keys, under their shards'
  // locks taken together. Returns how many leading keys were cached.
  size_t LookupSegment(NamespaceId ns, absl::Span<const BlockKey> segment, int64_t now_micros,
                       std::vector<ChainBlock>* blocks);
  static constexpr size_t kLookupSegment = 64;
  // The leaf order an entry belongs to while it has no children.
  static TickOrder Shard::*LeafOrder(const Entry& e);
  // No one but the index holds the block or its GPU copy.
  static bool Unheld(const Entry& e);
  static int64_t NowMicros();
  // Adds the entry to / removes it from the lists its state puts it in.
  // Every change of children or residency is Unlink, change, Link.
  // REQUIRES: shard.mu held.
  static void Link(Shard& shard, Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  static void Unlink(Shard& shard, Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Adds an entry's bytes to / takes them from its namespace's per-tier
  // usage, as its residency says. REQUIRES: shard.mu held.
  static void CountTiers(Shard& shard, const Entry& e, bool add)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Marks an entry used now: moves it to the newest end of its lists under
  // a new tick, unless it moved recently (the file comment says how
  // recently). REQUIRES: shard.mu held.
  void Touch(Shard& shard, Entry& e, int64_t now_micros) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Lists an entry that has host pages in the directory, if there is one /
  // withdraws it. REQUIRES: the entry's shard lock held.
  void ListInDirectory(const EntryKey& k, Entry& e);
  void WithdrawFromDirectory(Entry& e);
  // Unlinks an entry, recording why. REQUIRES: shard.mu held.
  void Remove(Shard& shard, const EntryKey& k, MissReason reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // One child of `parent` is gone: decrements its count, making it a leaf at 0.
  void ChildRemoved(const EntryKey& parent);
  // Keys of `root_key`'s subtree in namespace ns, root first.
  std::optional<BlockPin> PinEntry(NamespaceId ns, const BlockKey& key, bool count_hit,
                                   uint64_t* hits, bool* on_gpu);
  std::vector<EntryKey> CollectSubtree(NamespaceId ns, const BlockKey& root_key);
  // The globally least recently used unpinned entry of one recency list that
  // passes `want`, and its tick; nullopt if none.
  // It looks at most `max_skipped` refused entries into each shard's list.
  template <typename Want>
  std::optional<std::pair<Shard*, EntryKey>> FindColdest(TickOrder Shard::*order, Want want,
                                                         uint64_t* tick,
                                                         int max_skipped = kMaxPinnedSkipped);
  static constexpr int kMaxPinnedSkipped = 64;

  const EntryHash hash_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<uint64_t>* const pinned_bytes_;  // not owned
  NvmeDropListener nvme_drop_listener_;
  BlockDirectory* directory_ = nullptr;  // not owned; may be null
  DropRecord drops_;
  // Ticks start above kEvictFirstTicks, so a block marked evict_first can sit
  // that far below every other one.
  static constexpr uint64_t kEvictFirstTicks = uint64_t{1} << 62;
  // A touch moves a block only if more than blocks() / kRefreshFraction
  // ticks were handed out since its own.
  static constexpr uint64_t kRefreshFraction = 8;
  std::atomic<uint64_t> clock_{kEvictFirstTicks};
  std::atomic<uint64_t> blocks_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> host_blocks_{0};
  std::atomic<uint64_t> device_blocks_{0};
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_INDEX_BLOCK_INDEX_H_
