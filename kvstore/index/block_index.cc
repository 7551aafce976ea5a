#include "kvstore/index/block_index.h"

#include <algorithm>
#include <climits>
#include <deque>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace kvcache {
namespace {

}  // namespace

BlockIndex::BlockIndex(int shards, std::atomic<uint64_t>* pinned_bytes,
                       size_t drop_record_entries, int hash_bits)
    : hash_{hash_bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << std::max(hash_bits, 1)) - 1},
      pinned_bytes_(pinned_bytes),
      drops_(drop_record_entries) {
  shards = std::clamp(shards, 1, kMaxShards);
  shards_.reserve(shards);
  for (int i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>(hash_));
}

size_t BlockIndex::ShardIndex(const EntryKey& k) const { return ShardIndexOfHash(HashOf(k)); }

size_t BlockIndex::ShardIndexOfHash(size_t hash) const {
  // The top bits: the shard's own table places and tags entries by the low
  // ones, which a shard picked by them would make all alike.
  return (hash >> 48) % shards_.size();
}

BlockIndex::TickOrder BlockIndex::Shard::*BlockIndex::LeafOrder(const Entry& e) {
  if (e.block->on_host()) return &Shard::host_leaves;
  return e.device != nullptr ? &Shard::device_leaves : &Shard::nvme_leaves;
}

int64_t BlockIndex::NowMicros() { return absl::GetCurrentTimeNanos() / 1000; }

bool BlockIndex::Unheld(const Entry& e) {
  // use_count is exact enough here: holds are only created under the
  // shard lock, so an unheld block cannot gain one while we hold it.
  return e.block.use_count() == 1 && (e.device == nullptr || e.device.use_count() == 1);
}

void BlockIndex::CountTiers(Shard& shard, const Entry& e, bool add) {
  NamespaceUsage& u = shard.usage[e.key.ns];
  const uint64_t size = e.block->meta().size;
  // Unsigned wrap-around makes the subtraction exact.
  const uint64_t delta = add ? size : uint64_t{0} - size;
  if (e.block->on_host()) u.host_bytes += delta;
  if (e.on_nvme) u.nvme_bytes += delta;
  if (e.device != nullptr) u.device_bytes += delta;
}

void BlockIndex::Link(Shard& shard, Entry& e) {
  if (e.block->on_host()) shard.on_host.Place(&e);
  if (e.device != nullptr) shard.on_device.Place(&e);
  if (e.children == 0) (shard.*LeafOrder(e)).Place(&e);
  CountTiers(shard, e, true);
}

void BlockIndex::Unlink(Shard& shard, Entry& e) {
  if (e.block->on_host()) shard.on_host.Remove(&e);
  if (e.device != nullptr) shard.on_device.Remove(&e);
  if (e.children == 0) (shard.*LeafOrder(e)).Remove(&e);
  CountTiers(shard, e, false);
}

void BlockIndex::Touch(Shard& shard, Entry& e, int64_t now_micros) {
  e.last_access_micros = now_micros;
  // At most `span` blocks can have moved ahead of it since its tick: it is
  // still among the newest fraction of the cache, so it stays where it is.
  // (An evict_first block's tick is kEvictFirstTicks old: its first touch
  // always moves it.)
  const uint64_t span = blocks_.load(std::memory_order_relaxed) / kRefreshFraction;
  if (clock_.load(std::memory_order_relaxed) - e.tick < span) return;
  // Handed out under the shard lock, so the tick is the newest in every
  // list of this shard.
  e.tick = clock_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (e.block->on_host()) shard.on_host.MoveToNewest(&e);
  if (e.device != nullptr) shard.on_device.MoveToNewest(&e);
  if (e.children == 0) (shard.*LeafOrder(e)).MoveToNewest(&e);
}

void BlockIndex::ListInDirectory(const EntryKey& k, Entry& e) {
  if (directory_ == nullptr || !e.block->on_host()) return;
  if (e.directory_slot != BlockDirectory::kNotListed || e.left_unlisted) return;  // already tried
  e.directory_slot = directory_->List(k.ns, k.key, e.block->pages());
  e.left_unlisted = e.directory_slot == BlockDirectory::kNotListed;
}

void BlockIndex::WithdrawFromDirectory(Entry& e) {
  if (e.left_unlisted) {
    directory_->ForgetUnlisted();
    e.left_unlisted = false;
  }
  if (e.directory_slot == BlockDirectory::kNotListed) return;
  directory_->Withdraw(e.directory_slot);
  e.directory_slot = BlockDirectory::kNotListed;
}

void BlockIndex::Remove(Shard& shard, const EntryKey& k, MissReason reason) {
  auto it = shard.entries.find(k);
  if (it == shard.entries.end()) return;
  drops_.Add(k.ns, k.key, reason, NowMicros());
  WithdrawFromDirectory(it->second);
  Unlink(shard, it->second);
  if (auto u = shard.usage.find(k.ns); u != shard.usage.end()) {
    u->second.blocks -= 1;
    u->second.bytes -= it->second.block->meta().size;
    if (u->second.blocks == 0) shard.usage.erase(u);
  }
  if (it->second.on_nvme && nvme_drop_listener_) {
    nvme_drop_listener_(k.ns, it->second.block->meta());
  }
  blocks_.fetch_sub(1, std::memory_order_relaxed);
  bytes_.fetch_sub(it->second.block->meta().size, std::memory_order_relaxed);
  if (it->second.block->on_host()) host_blocks_.fetch_sub(1, std::memory_order_relaxed);
  if (it->second.device != nullptr) device_blocks_.fetch_sub(1, std::memory_order_relaxed);
  shard.entries.erase(it);
  if (directory_ != nullptr) directory_->CountPresent(k.ns, k.key, -1);
}

void BlockIndex::ChildRemoved(const EntryKey& parent) {
  Shard& shard = ShardOf(parent);
  MutexLock lock(&shard.mu);
  auto it = shard.entries.find(parent);
  if (it == shard.entries.end() || it->second.children == 0) return;
  Unlink(shard, it->second);
  --it->second.children;
  Link(shard, it->second);
}

size_t BlockIndex::LookupChain(NamespaceId ns, absl::Span<const BlockKey> chain,
                               std::vector<ChainBlock>* blocks) {
  const int64_t now = NowMicros();
  size_t hits = 0;
  while (hits < chain.size()) {
    const size_t want = std::min(kLookupSegment, chain.size() - hits);
    const size_t found = LookupSegment(ns, chain.subspan(hits, want), now, blocks);
    hits += found;
    if (found < want) break;
  }
  return hits;
}

// Taking several shard locks is safe: every other method holds at most
// one, and this one takes them in shard order.
size_t BlockIndex::LookupSegment(NamespaceId ns, absl::Span<const BlockKey> segment,
                                 int64_t now_micros, std::vector<ChainBlock>* blocks)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  size_t hash[kLookupSegment];  // each key hashed once, for its shard and its table
  uint8_t shard_of[kLookupSegment];
  uint64_t mask = 0;
  for (size_t i = 0; i < segment.size(); ++i) {
    hash[i] = HashOf(EntryKey{ns, segment[i]});
    shard_of[i] = static_cast<uint8_t>(ShardIndexOfHash(hash[i]));
    mask |= uint64_t{1} << shard_of[i];
  }
  for (uint64_t m = mask; m != 0; m &= m - 1) shards_[__builtin_ctzll(m)]->mu.Lock();
  size_t hits = 0;
  for (; hits < segment.size(); ++hits) {
    Shard& shard = *shards_[shard_of[hits]];
    auto it = shard.entries.find(EntryKey{ns, segment[hits]}, hash[hits]);
    if (it == shard.entries.end()) break;
    Touch(shard, it->second, now_micros);
    if (blocks != nullptr) {
      blocks->push_back({it->second.block->meta().size, it->second.block->on_host(),
                         it->second.device != nullptr});
    }
  }
  for (uint64_t m = mask; m != 0; m &= m - 1) shards_[__builtin_ctzll(m)]->mu.Unlock();
  return hits;
}

void BlockIndex::RecordDirectReads(NamespaceId ns, const BlockKey& key, uint64_t reads) {
  const EntryKey k{ns, key};
  Shard& shard = ShardOf(k);
  MutexLock lock(&shard.mu);
  auto it = shard.entries.find(k);
  if (it == shard.entries.end()) return;
  Touch(shard, it->second, NowMicros());
  it->second.hits += reads;
}

std::optional<BlockPin> BlockIndex::Pin(NamespaceId ns, const BlockKey& key, uint64_t* hits,
                                        bool* on_gpu) {
  return PinEntry(ns, key, /*count_hit=*/true, hits, on_gpu);
}

std::optional<BlockPin> BlockIndex::PinAsParent(NamespaceId ns, const BlockKey& key) {
  return PinEntry(ns, key, /*count_hit=*/false, nullptr, nullptr);
}

std::optional<BlockPin> BlockIndex::PinEntry(NamespaceId ns, const BlockKey& key, bool count_hit,
                                             uint64_t* hits, bool* on_gpu) {
  const EntryKey k{ns, key};
  Shard& shard = ShardOf(k);
  MutexLock lock(&shard.mu);
  auto it = shard.entries.find(k);
  if (it == shard.entries.end()) return std::nullopt;
  Touch(shard, it->second, NowMicros());
  if (count_hit) ++it->second.hits;
  if (hits != nullptr) *hits = it->second.hits;
  if (on_gpu != nullptr) *on_gpu = it->second.device != nullptr;
  return BlockPin(it->second.block, pinned_bytes_);
}

InsertOutcome BlockIndex::Insert(NamespaceId ns, BlockMeta meta, PageRun pages, bool on_nvme) {
  const EntryKey parent{ns, meta.parent};
  if (meta.parent.empty()) {
    meta.root = meta.key;
    meta.depth = 1;
  } else {
    Shard& ps = ShardOf(parent);
    MutexLock lock(&ps.mu);
    auto it = ps.entries.find(parent);
    if (it == ps.entries.end()) {
      drops_.Add(ns, meta.key, MissReason::kParentMissing, NowMicros());
      return InsertOutcome::kParentMissing;
    }
    meta.root = it->second.block->meta().root;
    meta.depth = it->second.block->meta().depth + 1;
    // Count the child now, so the parent stops being an evictable leaf
    // before the child becomes visible.
    Unlink(ps, it->second);
    ++it->second.children;
    Link(ps, it->second);
  }
  const EntryKey k{ns, meta.key};
  const uint64_t size = meta.size;
  bool inserted = false;
  {
    Shard& shard = ShardOf(k);
    MutexLock lock(&shard.mu);
    auto [it, fresh] = shard.entries.try_emplace(k);
    inserted = fresh;
    if (fresh) {
      it->second.key = k;
      if (meta.created_micros == 0) meta.created_micros = NowMicros();
      it->second.block = std::make_shared<CachedBlock>(std::move(meta), std::move(pages));
      it->second.on_nvme = on_nvme;
      it->second.tick = clock_.fetch_add(1, std::memory_order_relaxed) + 1;
      // Marked blocks sort before every unmarked leaf (in their own LRU
      // order) until a read gives them an ordinary tick.
      if (it->second.block->meta().evict_first) it->second.tick -= kEvictFirstTicks;
      it->second.last_access_micros = it->second.block->meta().created_micros;
      Link(shard, it->second);
      if (directory_ != nullptr) directory_->CountPresent(k.ns, k.key, +1);
      ListInDirectory(k, it->second);
      blocks_.fetch_add(1, std::memory_order_relaxed);
      bytes_.fetch_add(size, std::memory_order_relaxed);
      NamespaceUsage& usage = shard.usage[k.ns];
      usage.blocks += 1;
      usage.bytes += size;
      if (it->second.block->on_host()) host_blocks_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (inserted) return InsertOutcome::kStored;
  if (!parent.key.empty()) ChildRemoved(parent);
  return InsertOutcome::kAlreadyCached;
}

template <typename Want>
std::optional<std::pair<BlockIndex::Shard*, BlockIndex::EntryKey>> BlockIndex::FindColdest(
    TickOrder Shard::*order, Want want, uint64_t* tick, int max_skipped) {
  uint64_t best_tick = UINT64_MAX;
  Shard* best_shard = nullptr;
  EntryKey best_key{};
  for (auto& shard : shards_) {
    MutexLock lock(&shard->mu);
    int skipped = 0;
    const TickOrder& list = (*shard).*order;
    for (const Entry* e = list.coldest(); e != nullptr; e = list.Newer(e)) {
      if (e->tick >= best_tick || skipped++ > max_skipped) break;
      if (Unheld(*e) && want(*e)) {
        best_tick = e->tick;
        best_shard = shard.get();
        best_key = e->key;
        break;
      }
    }
  }
  if (best_shard == nullptr) return std::nullopt;
  *tick = best_tick;
  return std::make_pair(best_shard, best_key);
}

std::optional<uint64_t> BlockIndex::EvictOneLeaf(LeafResidency residency) {
  return EvictOneLeafOf(residency, nullptr);
}

std::optional<uint64_t> BlockIndex::EvictOneLeafOf(
    LeafResidency residency, const std::function<bool(NamespaceId)>& evictable) {
  TickOrder Shard::*order = residency == LeafResidency::kOnHost       ? &Shard::host_leaves
                            : residency == LeafResidency::kDeviceOnly ? &Shard::device_leaves
                                                                      : &Shard::nvme_leaves;
  for (int attempt = 0; attempt < 8; ++attempt) {
    uint64_t tick = 0;
    auto found =
        evictable == nullptr
            ? FindColdest(
                  order, [](const Entry&) { return true; }, &tick)
            : FindColdest(
                  order, [&](const Entry& e) { return evictable(e.key.ns); }, &tick, INT_MAX);
    if (!found.has_value()) return std::nullopt;
    auto [shard, key] = *found;
    std::shared_ptr<const CachedBlock> victim;
    {
      MutexLock lock(&shard->mu);
      auto it = shard->entries.find(key);
      if (it == shard->entries.end() || it->second.children != 0 || it->second.tick != tick ||
          !Unheld(it->second) || LeafOrder(it->second) != order) {
        continue;  // changed since we looked; look again
      }
      victim = it->second.block;  // freed after the lock is dropped
      Remove(*shard, key, MissReason::kEvictedPressure);
    }
    if (!victim->meta().parent.empty()) ChildRemoved({key.ns, victim->meta().parent});
    return victim->meta().size;
  }
  return std::nullopt;
}

std::optional<uint64_t> BlockIndex::DropColdestHostCopyOf(
    const std::function<bool(NamespaceId)>& droppable) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    uint64_t tick = 0;
    auto found =
        droppable == nullptr
            ? FindColdest(
                  &Shard::on_host, [](const Entry& e) { return e.on_nvme; }, &tick)
            : FindColdest(
                  &Shard::on_host, [&](const Entry& e) { return e.on_nvme && droppable(e.key.ns); },
                  &tick, INT_MAX);
    if (!found.has_value()) return std::nullopt;
    auto [shard, key] = *found;
    const CachedBlock* block = nullptr;
    {
      MutexLock lock(&shard->mu);
      auto it = shard->entries.find(key);
      if (it == shard->entries.end()) continue;
      block = it->second.block.get();
    }
    if (uint64_t freed = DropHostCopy(key.ns, key.key, block); freed > 0) return freed;
  }
  return std::nullopt;
}

absl::StatusOr<EvictCount> BlockIndex::EvictKey(NamespaceId ns, const BlockKey& key, bool dry_run,
                                                MissReason reason) {
  const EntryKey k{ns, key};
  Shard& shard = ShardOf(k);
  std::shared_ptr<const CachedBlock> victim;
  {
    MutexLock lock(&shard.mu);
    auto it = shard.entries.find(k);
    if (it == shard.entries.end()) {
      return absl::NotFoundError(absl::StrCat("block ", key.ToHex(), " is not cached"));
    }
    if (it->second.children > 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("block ", key.ToHex(), " has ", it->second.children,
                       " cached children; evict its subtree instead"));
    }
    victim = it->second.block;
    if (!dry_run) Remove(shard, k, reason);
  }
  if (!dry_run && !victim->meta().parent.empty()) ChildRemoved({ns, victim->meta().parent});
  return EvictCount{1, victim->meta().size};
}

std::vector<BlockIndex::EntryKey> BlockIndex::CollectSubtree(NamespaceId ns,
                                                             const BlockKey& root_key) {
  std::optional<BlockView> top = Inspect(ns, root_key);
  if (!top.has_value()) return {};
  // Every descendant shares the chain root of `root_key`; gather those and
  // walk parent links down from root_key.
  absl::flat_hash_map<BlockKey, std::vector<BlockKey>> children;
  for (auto& shard : shards_) {
    MutexLock lock(&shard->mu);
    for (const auto& [k, e] : shard->entries) {
      const BlockMeta& m = e.block->meta();
      if (k.ns == ns && m.root == top->meta.root && !m.parent.empty()) {
        children[m.parent].push_back(k.key);
      }
    }
  }
  std::vector<EntryKey> out = {{ns, root_key}};
  for (size_t i = 0; i < out.size(); ++i) {
    auto it = children.find(out[i].key);
    if (it == children.end()) continue;
    for (const BlockKey& c : it->second) out.push_back({ns, c});
  }
  return out;
}

absl::StatusOr<EvictCount> BlockIndex::EvictSubtree(NamespaceId ns, const BlockKey& key,
                                                    bool dry_run, MissReason reason) {
  const MissReason below =
      reason == MissReason::kEvictedOperator ? reason : MissReason::kParentMissing;
  std::vector<EntryKey> subtree = CollectSubtree(ns, key);
  if (subtree.empty()) {
    return absl::NotFoundError(absl::StrCat("block ", key.ToHex(), " is not cached"));
  }
  EvictCount count;
  BlockKey top_parent;
  // Leaves first (reverse of the walk), so no reader ever sees a hole.
  for (auto it = subtree.rbegin(); it != subtree.rend(); ++it) {
    Shard& shard = ShardOf(*it);
    std::shared_ptr<const CachedBlock> victim;
    {
      MutexLock lock(&shard.mu);
      auto e = shard.entries.find(*it);
      if (e == shard.entries.end()) continue;
      victim = e->second.block;
      if (!dry_run) Remove(shard, *it, it->key == key ? reason : below);
    }
    ++count.blocks;
    count.bytes += victim->meta().size;
    if (it->key == key) top_parent = victim->meta().parent;
  }
  if (!dry_run && !top_parent.empty()) ChildRemoved({ns, top_parent});
  return count;
}

EvictCount BlockIndex::EvictNamespaces(absl::Span<const NamespaceId> namespaces, bool dry_run) {
  const absl::flat_hash_set<NamespaceId> wanted(namespaces.begin(), namespaces.end());
  EvictCount count;
  for (auto& shard : shards_) {
    std::vector<std::shared_ptr<const CachedBlock>> victims;  // freed unlocked
    MutexLock lock(&shard->mu);
    std::vector<EntryKey> doomed;
    for (const auto& [k, e] : shard->entries) {
      if (!wanted.contains(k.ns)) continue;
      ++count.blocks;
      count.bytes += e.block->meta().size;
      doomed.push_back(k);
    }
    if (dry_run) continue;
    for (const EntryKey& k : doomed) {
      victims.push_back(shard->entries.at(k).block);
      Remove(*shard, k, MissReason::kEvictedOperator);
    }
  }
  return count;
}

absl::flat_hash_map<NamespaceId, NamespaceUsage> BlockIndex::UsageByNamespace()
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  absl::flat_hash_map<NamespaceId, NamespaceUsage> total;
  // Every shard at once (in index order, as LookupSegment takes them): one
  // instant's figures, never a block a commit dropped in one shard counted
  // beside the one it inserted in another.
  for (auto& shard : shards_) shard->mu.Lock();
  for (auto& shard : shards_) {
    for (const auto& [ns, u] : shard->usage) {
      NamespaceUsage& t = total[ns];
      t.blocks += u.blocks;
      t.bytes += u.bytes;
      t.host_bytes += u.host_bytes;
      t.nvme_bytes += u.nvme_bytes;
      t.device_bytes += u.device_bytes;
    }
  }
  for (auto& shard : shards_) shard->mu.Unlock();
  return total;
}

std::optional<BlockView> BlockIndex::Inspect(NamespaceId ns, const BlockKey& key) {
  const EntryKey k{ns, key};
  Shard& shard = ShardOf(k);
  MutexLock lock(&shard.mu);
  auto it = shard.entries.find(k);
  if (it == shard.entries.end()) return std::nullopt;
  const Entry& e = it->second;
  return BlockView{ns,
                   e.block->meta(),
                   e.children,
                   e.hits,
                   e.last_access_micros,
                   static_cast<uint32_t>(e.block.use_count() - 1),
                   e.block->on_host(),
                   e.on_nvme,
                   e.device != nullptr};
}

std::vector<BlockView> BlockIndex::Snapshot(absl::Span<const NamespaceId> namespaces) {
  const absl::flat_hash_set<NamespaceId> wanted(namespaces.begin(), namespaces.end());
  std::vector<BlockView> out;
  for (auto& shard : shards_) {
    MutexLock lock(&shard->mu);
    for (const auto& [k, e] : shard->entries) {
      if (!wanted.contains(k.ns)) continue;
      out.push_back(BlockView{k.ns, e.block->meta(), e.children, e.hits, e.last_access_micros,
                              static_cast<uint32_t>(e.block.use_count() - 1), e.block->on_host(),
                              e.on_nvme, e.device != nullptr});
    }
  }
  return out;
}

}  // namespace kvcache
