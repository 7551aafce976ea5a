// BlockIndex, part two: moving blocks between tiers (spill candidates and
// host copies for the NVMe tier; GPU copies for the GPU tier). Each change
// of residency is one step under the entry's shard lock, and never loses
// the block's last copy (block_index.h, invariants 4 and 6). The forest
// itself (insert, lookup, pins, eviction, inspection) is in block_index.cc.
#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "kvstore/index/block_index.h"

namespace kvcache {

std::vector<SpillCandidate> BlockIndex::ColdestOnHost(size_t max) {
  std::vector<std::pair<uint64_t, SpillCandidate>> found;
  for (auto& shard : shards_) {
    MutexLock lock(&shard->mu);
    size_t taken = 0;
    for (const Entry* p = shard->on_host.coldest(); p != nullptr; p = shard->on_host.Newer(p)) {
      if (taken == max) break;
      const Entry& e = *p;
      if (e.block.use_count() != 1) continue;
      found.push_back({e.tick, SpillCandidate{e.key.ns, e.key.key, e.block->meta().size,
                                              e.block.get(), e.block, e.on_nvme, e.hits}});
      ++taken;
    }
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<SpillCandidate> out;
  for (size_t i = 0; i < found.size() && i < max; ++i) out.push_back(std::move(found[i].second));
  return out;
}

bool BlockIndex::MarkOnNvme(NamespaceId ns, const CachedBlock& block) {
  const EntryKey k{ns, block.meta().key};
  Shard& shard = ShardOf(k);
  MutexLock lock(&shard.mu);
  auto it = shard.entries.find(k);
  if (it == shard.entries.end() || it->second.block.get() != &block) return false;
  if (!it->second.on_nvme) {
    it->second.on_nvme = true;
    shard.usage[ns].nvme_bytes += block.meta().size;
  }
  return true;
}

uint64_t BlockIndex::DropHostCopy(NamespaceId ns, const BlockKey& key,
                                  const CachedBlock* expected) {
  const EntryKey k{ns, key};
  Shard& shard = ShardOf(k);
  std::shared_ptr<const CachedBlock> freed;  // released after the lock
  MutexLock lock(&shard.mu);
  auto it = shard.entries.find(k);
  if (it == shard.entries.end()) return 0;
  Entry& e = it->second;
  if (e.block.get() != expected || !e.on_nvme || !e.block->on_host() || e.block.use_count() != 1) {
    return 0;
  }
  WithdrawFromDirectory(e);
  Unlink(shard, e);
  freed = std::move(e.block);
  e.block = std::make_shared<CachedBlock>(freed->meta(), PageRun());
  Link(shard, e);
  host_blocks_.fetch_sub(1, std::memory_order_relaxed);
  return freed->meta().size;  // its pages are freed after the lock is dropped
}

std::optional<BlockPin> BlockIndex::InstallHostCopy(NamespaceId ns, const BlockKey& key,
                                                    uint64_t checksum, PageRun pages) {
  const EntryKey k{ns, key};
  Shard& shard = ShardOf(k);
  std::shared_ptr<const CachedBlock> replaced;  // released after the lock
  MutexLock lock(&shard.mu);
  auto it = shard.entries.find(k);
  if (it == shard.entries.end()) return std::nullopt;
  Entry& e = it->second;
  if (!e.block->on_host()) {
    if (e.block->meta().checksum != checksum) return std::nullopt;  // not these bytes
    Unlink(shard, e);
    replaced = std::move(e.block);
    e.block = std::make_shared<CachedBlock>(replaced->meta(), std::move(pages));
    Link(shard, e);
    ListInDirectory(k, e);
    host_blocks_.fetch_add(1, std::memory_order_relaxed);
  }
  return BlockPin(e.block, pinned_bytes_);
}

std::shared_ptr<const CachedBlock> BlockIndex::HostCopyToUpload(NamespaceId ns,
                                                                const BlockKey& key) {
  const EntryKey k{ns, key};
  Shard& shard = ShardOf(k);
  MutexLock lock(&shard.mu);
  auto it = shard.entries.find(k);
  if (it == shard.entries.end() || !it->second.block->on_host() || it->second.device != nullptr) {
    return nullptr;
  }
  return it->second.block;
}

bool BlockIndex::InstallDeviceCopy(NamespaceId ns, const BlockKey& key,
                                   std::shared_ptr<const CachedBlock> source,
                                   std::shared_ptr<const DeviceBlock> device) {
  const EntryKey k{ns, key};
  Shard& shard = ShardOf(k);
  MutexLock lock(&shard.mu);
  auto it = shard.entries.find(k);
  if (it == shard.entries.end()) return false;
  Entry& e = it->second;
  if (e.block != source || e.device != nullptr) return false;
  Unlink(shard, e);
  e.device = std::move(device);
  Link(shard, e);
  device_blocks_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool BlockIndex::DropHostCopyAboveDevice(NamespaceId ns, const BlockKey& key) {
  const EntryKey k{ns, key};
  Shard& shard = ShardOf(k);
  std::shared_ptr<const CachedBlock> replaced;  // released after the lock
  MutexLock lock(&shard.mu);
  auto it = shard.entries.find(k);
  if (it == shard.entries.end()) return true;
  Entry& e = it->second;
  if (!e.block->on_host()) return true;
  if (e.device == nullptr || e.block.use_count() != 1) return false;
  WithdrawFromDirectory(e);
  Unlink(shard, e);
  replaced = std::move(e.block);
  e.block = std::make_shared<CachedBlock>(replaced->meta(), PageRun());
  Link(shard, e);
  host_blocks_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

std::shared_ptr<const DeviceBlock> BlockIndex::DeviceCopy(NamespaceId ns, const BlockKey& key) {
  const EntryKey k{ns, key};
  Shard& shard = ShardOf(k);
  MutexLock lock(&shard.mu);
  auto it = shard.entries.find(k);
  return it == shard.entries.end() ? nullptr : it->second.device;
}

std::shared_ptr<const DeviceBlock> BlockIndex::ReadDeviceCopy(NamespaceId ns, const BlockKey& key) {
  const EntryKey k{ns, key};
  Shard& shard = ShardOf(k);
  MutexLock lock(&shard.mu);
  auto it = shard.entries.find(k);
  if (it == shard.entries.end() || it->second.device == nullptr) return nullptr;
  Touch(shard, it->second, NowMicros());
  ++it->second.hits;
  return it->second.device;
}

std::vector<DeviceCandidate> BlockIndex::ColdestOnDevice(
    size_t max, const std::function<bool(NamespaceId)>& of) {
  std::vector<std::pair<uint64_t, DeviceCandidate>> found;
  for (auto& shard : shards_) {
    MutexLock lock(&shard->mu);
    size_t taken = 0;
    for (const Entry* p = shard->on_device.coldest(); p != nullptr;
         p = shard->on_device.Newer(p)) {
      if (taken == max) break;
      const Entry& e = *p;
      if (e.device.use_count() != 1) continue;  // a reader or a lease holds it
      if (of != nullptr && !of(e.key.ns)) continue;
      found.push_back({e.tick, DeviceCandidate{e.key.ns, e.key.key, e.block->meta().size,
                                               e.device, e.block->on_host() || e.on_nvme}});
      ++taken;
    }
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<DeviceCandidate> out;
  for (size_t i = 0; i < found.size() && i < max; ++i) out.push_back(std::move(found[i].second));
  return out;
}

bool BlockIndex::DropDeviceCopy(NamespaceId ns, const BlockKey& key,
                                std::shared_ptr<const DeviceBlock> held, PageRun host_pages) {
  const EntryKey k{ns, key};
  Shard& shard = ShardOf(k);
  std::shared_ptr<const CachedBlock> replaced;  // released after the lock
  std::shared_ptr<const DeviceBlock> dropped;
  MutexLock lock(&shard.mu);
  auto it = shard.entries.find(k);
  if (it == shard.entries.end()) return false;
  Entry& e = it->second;
  if (e.device != held) return false;
  held.reset();
  if (e.device.use_count() != 1) return false;  // a reader or a lease still holds it
  const bool give_host_pages = !e.block->on_host() && host_pages.page_count() > 0;
  if (!e.block->on_host() && !e.on_nvme && !give_host_pages) return false;  // its only copy
  Unlink(shard, e);
  if (give_host_pages) {
    replaced = std::move(e.block);
    e.block = std::make_shared<CachedBlock>(replaced->meta(), std::move(host_pages));
    host_blocks_.fetch_add(1, std::memory_order_relaxed);
  }
  dropped = std::move(e.device);
  device_blocks_.fetch_sub(1, std::memory_order_relaxed);
  Link(shard, e);
  if (give_host_pages) ListInDirectory(k, e);
  return true;
}

}  // namespace kvcache
