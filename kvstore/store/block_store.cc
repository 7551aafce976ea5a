#include "kvstore/store/block_store.h"

#include "kvstore/store/staged_block.h"

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace kvcache {
namespace {

// Candidates the spiller takes from the index per round, and how many of
// them it writes to NVMe at once.
constexpr size_t kSpillBatch = 32;
constexpr size_t kWriteBatch = 8;
// How long a put short of room waits for the spill thread.
constexpr std::chrono::seconds kRoomWait(2);

}  // namespace

absl::StatusOr<std::unique_ptr<BlockStore>> BlockStore::Create(const Options& options) {
  if (!(options.spill_low > 0 && options.spill_low <= options.spill_high &&
        options.spill_high <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("spill watermarks must satisfy 0 < low (",
                                                   options.spill_low, ") <= high (",
                                                   options.spill_high, ") <= 1"));
  }
  absl::StatusOr<std::unique_ptr<HostArena>> arena = HostArena::Create(options.arena);
  if (!arena.ok()) return arena.status();
  std::unique_ptr<BlockStore> store(new BlockStore(std::move(*arena), options));
  if (options.block_directory && !store->arena_->sealed()) {
    store->directory_unavailable_ = "the host arena is not a sealed memfd";
  } else if (options.block_directory) {
    // Every tier's blocks are counted in its presence table: at most one
    // block per page of each.
    const uint64_t page = store->arena_->page_bytes();
    uint64_t max_blocks = store->arena_->capacity_bytes() / page;
    if (options.nvme.has_value()) max_blocks += options.nvme->store.bytes / page;
    if (options.gpu.has_value()) max_blocks += options.gpu->pool.capacity_bytes / page;
    absl::StatusOr<std::unique_ptr<BlockDirectory>> directory =
        BlockDirectory::Create(*store->arena_, max_blocks);
    if (directory.ok()) {
      store->directory_ = std::move(*directory);
      store->directory_unavailable_.clear();
      store->index_->SetDirectory(store->directory_.get());
    } else {
      store->directory_unavailable_ = std::string(directory.status().message());
    }
  }
  if (options.nvme.has_value()) {
    absl::StatusOr<std::unique_ptr<NvmeTier>> tier =
        NvmeTier::Open(*options.nvme, &store->namespaces_);
    if (tier.ok()) {
      store->nvme_ = std::move(*tier);
    } else if (tier.status().code() == absl::StatusCode::kInvalidArgument) {
      return tier.status();
    } else {
      store->nvme_unavailable_ = std::string(tier.status().message());
    }
  }
  if (store->nvme_ != nullptr) {
    NvmeTier* tier = store->nvme_.get();
    // Best effort: without it io_uring maps each buffer per op.
    tier->RegisterArena(store->arena_->PageData(0), store->arena_->capacity_bytes()).IgnoreError();
    store->index_->SetNvmeDropListener(
        [tier](NamespaceId ns, const BlockMeta& meta) { tier->Remove(ns, meta); });
    store->RestoreFromNvme();
    if (options.spill_in_background) {
      store->spill_thread_ = std::thread([s = store.get()] { s->SpillLoop(); });
    }
  }
  if (options.gpu.has_value()) {
    absl::StatusOr<std::unique_ptr<DeviceMemory>> memory =
        options.gpu_in_host_memory ? DeviceMemory::CreateHostBacked(options.gpu->pool)
                                   : DeviceMemory::Create(options.gpu->pool);
    if (!memory.ok() && memory.status().code() == absl::StatusCode::kInvalidArgument) {
      return memory.status();
    }
    if (!memory.ok()) {
      store->gpu_unavailable_ = std::string(memory.status().message());
    } else {
      store->gpu_memory_ = *std::move(memory);
      absl::StatusOr<std::unique_ptr<GpuTier>> tier =
          GpuTier::Create(*options.gpu, *store->gpu_memory_, *store->index_,
                          [s = store.get()](uint64_t bytes) { return s->AllocateEvicting(bytes); },
                          store->GpuTenantRoom());
      if (!tier.ok()) return tier.status();
      store->gpu_ = *std::move(tier);
      store->gpu_unavailable_.clear();
    }
  }
  if (store->directory_ != nullptr) {
    // Only the host arena's blocks can be listed: with a tier below or above
    // it, a key the directory lacks may still be cached.
    store->directory_->SetComplete(store->nvme_ == nullptr && store->gpu_ == nullptr);
  }
  return store;
}

BlockStore::BlockStore(std::unique_ptr<HostArena> arena, const Options& options)
    : spill_high_(options.spill_high),
      spill_low_(options.spill_low),
      tenant_quotas_(options.tenant_quotas),
      quota_locks_(QuotaLocks(options.tenant_quotas)),
      arena_(std::move(arena)),
      namespaces_(options.max_namespaces),
      index_(std::make_unique<BlockIndex>(options.index_shards, &pinned_bytes_,
                                            options.drop_record_entries,
                                            options.index_hash_bits)) {}

BlockStore::~BlockStore() {
  gpu_.reset();  // its mover takes host pages, which may wait for the spiller
  {
    MutexLock lock(&spill_mu_);
    stopping_ = true;
  }
  spill_wake_.SignalAll();
  if (spill_thread_.joinable()) spill_thread_.join();
}

void BlockStore::RestoreFromNvme() {
  const absl::Time start = absl::Now();
  struct Stored {
    NamespaceId ns;
    BlockMeta meta;
  };
  std::vector<Stored> stored;
  nvme_->ForEachStored([&](NamespaceId ns, const BlockMeta& meta) {
    stored.push_back({ns, meta});
  });
  // Insert parents before children: roots first, then each block's children.
  absl::flat_hash_map<std::pair<NamespaceId, BlockKey>, std::vector<size_t>> children;
  std::vector<size_t> ready;
  for (size_t i = 0; i < stored.size(); ++i) {
    if (stored[i].meta.parent.empty()) {
      ready.push_back(i);
    } else {
      children[{stored[i].ns, stored[i].meta.parent}].push_back(i);
    }
  }
  std::vector<bool> placed(stored.size(), false);
  for (size_t r = 0; r < ready.size(); ++r) {
    Stored& s = stored[ready[r]];
    placed[ready[r]] = true;
    const BlockKey key = s.meta.key;
    if (index_->Insert(s.ns, s.meta, PageRun(), /*on_nvme=*/true) != InsertOutcome::kStored) {
      continue;
    }
    ++restored_blocks_;
    auto it = children.find({s.ns, key});
    if (it != children.end()) ready.insert(ready.end(), it->second.begin(), it->second.end());
  }
  uint64_t orphans = 0;
  for (size_t i = 0; i < stored.size(); ++i) {
    if (placed[i]) continue;
    nvme_->Remove(stored[i].ns, stored[i].meta);  // its chain is broken above it
    ++orphans;
  }
  restore_seconds_ = absl::ToDoubleSeconds(absl::Now() - start);
  Log(LogLevel::kInfo,
      absl::StrCat("NVMe tier: indexed ", restored_blocks_, " blocks in ", restore_seconds_, " s",
                   orphans ? absl::StrCat(", dropped ", orphans, " whose parent is gone") : ""));
}

absl::StatusOr<PageRun> BlockStore::AllocateEvicting(uint64_t bytes) {
  if (bytes > arena_->capacity_bytes()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "a ", bytes, "-byte block cannot fit the ", arena_->capacity_bytes(), "-byte host tier"));
  }
  // Waits for the spiller at most this often per block: when other puts
  // keep taking the room it makes, this one falls back to eviction rather
  // than wait without bound.
  int spill_waits_left = 3;
  while (true) {
    absl::StatusOr<PageRun> pages = arena_->Allocate(bytes);
    if (pages.ok()) {
      if (nvme_ != nullptr && arena_->used_bytes() > spill_high_ * arena_->capacity_bytes()) {
        spill_wake_.SignalAll();
      }
      return pages;
    }
    if (nvme_ != nullptr) {
      if (index_->DropColdestHostCopy().has_value()) continue;
      // The spiller is behind: have it write cold blocks now, rather than
      // drop one the disk could keep.
      if (spill_waits_left-- > 0 && SpillForRoom(bytes)) continue;
    }
    if (!EvictForRoom().has_value()) return pages.status();
    evicted_blocks_.fetch_add(1, std::memory_order_relaxed);
  }
}

MissReason BlockStore::WhyMissing(NamespaceId ns, const BlockKey& key) const {
  std::optional<Drop> drop = index_->FindDrop(ns, key);
  return drop.has_value() ? drop->reason : MissReason::kNeverStored;
}

std::optional<BlockPin> BlockStore::PinForRead(NamespaceId ns, const BlockKey& key,
                                               ReadSource* source, MissReason* miss) {
  MissReason unused;
  if (miss == nullptr) miss = &unused;
  uint64_t hits = 0;
  bool on_gpu = false;
  std::optional<BlockPin> pin = index_->Pin(ns, key, &hits, &on_gpu);
  if (!pin.has_value()) {
    *miss = WhyMissing(ns, key);
    return pin;
  }
  if (source != nullptr) *source = ReadSource::kHost;
  if (pin->block().on_host()) {
    if (gpu_ != nullptr && !on_gpu && hits >= gpu_->promote_after_hits()) {
      gpu_->OfferHit(ns, key);
    }
    return pin;
  }
  // No host pages. The pin (of its metadata) keeps it in the index meanwhile.
  const BlockMeta meta = pin->meta();
  if (gpu_ != nullptr) {
    absl::StatusOr<PageRun> pages = gpu_->CopyToHost(ns, key);
    if (pages.ok()) {
      if (source != nullptr) *source = ReadSource::kGpu;
      return Installed(ns, key, meta.checksum, *std::move(pages), miss);
    }
    if (pages.status().code() == absl::StatusCode::kResourceExhausted) {
      *miss = MissReason::kNoRoom;
      return std::nullopt;
    }
    if (pages.status().code() == absl::StatusCode::kDataLoss) {
      pin.reset();  // as for a bad NVMe copy: a miss, and its children with it
      index_->EvictSubtree(ns, key, /*dry_run=*/false, MissReason::kIntegrity).IgnoreError();
      *miss = MissReason::kIntegrity;
      return std::nullopt;
    }
    if (pages.status().code() == absl::StatusCode::kNotFound) {
      // No GPU copy: demoted to the host meanwhile, or only on NVMe.
      pin = index_->PinAsParent(ns, key);  // the hit is counted already
      if (!pin.has_value()) *miss = WhyMissing(ns, key);
      if (!pin.has_value() || pin->block().on_host()) return pin;
    }
    // Otherwise the tier failed and the GPU copy with it; NVMe is the last chance.
  }
  if (nvme_ == nullptr) {
    // Its only copy was on a GPU tier that failed.
    pin.reset();
    index_->EvictSubtree(ns, key, /*dry_run=*/false, MissReason::kTierDisabled).IgnoreError();
    *miss = MissReason::kTierDisabled;
    return std::nullopt;
  }
  absl::StatusOr<PageRun> pages = AllocateEvicting(meta.size);
  if (!pages.ok()) {
    *miss = MissReason::kNoRoom;
    return std::nullopt;
  }
  absl::Status read = nvme_->Read(ns, meta, *pages);
  if (read.code() == absl::StatusCode::kDataLoss || read.code() == absl::StatusCode::kNotFound) {
    pin.reset();
    // Its children cannot be reached without it: drop the subtree.
    index_->EvictSubtree(ns, key, /*dry_run=*/false, MissReason::kIntegrity).IgnoreError();
    *miss = MissReason::kIntegrity;
    return std::nullopt;
  }
  if (!read.ok()) {  // an I/O error, or reads disabled: a miss, the entry stays
    *miss = MissReason::kTierDisabled;
    return std::nullopt;
  }
  promoted_blocks_.fetch_add(1, std::memory_order_relaxed);
  if (source != nullptr) *source = ReadSource::kNvme;
  return Installed(ns, key, meta.checksum, *std::move(pages), miss);
}

std::optional<BlockPin> BlockStore::Installed(NamespaceId ns, const BlockKey& key,
                                              uint64_t checksum, PageRun pages,
                                              MissReason* miss) {
  std::optional<BlockPin> pin = index_->InstallHostCopy(ns, key, checksum, std::move(pages));
  // Gone meanwhile, or re-put with other bytes (which no record explains).
  if (!pin.has_value()) {
    *miss = WhyMissing(ns, key);
    return pin;
  }
  TrimHostToQuota(ns);
  return pin;
}

absl::StatusOr<std::string> BlockStore::CopyOut(NamespaceId ns, const BlockKey& key) {
  std::optional<BlockPin> pin = index_->PinAsParent(ns, key);
  if (!pin.has_value()) return absl::NotFoundError("not cached");
  const BlockMeta meta = pin->meta();
  std::string out(meta.size, '\0');
  const absl::Span<uint8_t> dst(reinterpret_cast<uint8_t*>(out.data()), out.size());
  if (pin->block().on_host()) {
    pin->block().pages().Read(0, dst);
    return out;
  }
  // Pages for the read, given back when `pages` goes; its pin keeps the
  // block's copies in place meanwhile.
  if (gpu_ != nullptr) {
    absl::StatusOr<PageRun> pages = gpu_->CopyToHost(ns, key);
    if (pages.ok()) {
      pages->Read(0, dst);
      return out;
    }
    if (pages.status().code() == absl::StatusCode::kResourceExhausted) return pages.status();
  }
  if (nvme_ == nullptr) return absl::NotFoundError("no copy that can be read");
  absl::StatusOr<PageRun> pages = AllocateEvicting(meta.size);
  if (!pages.ok()) return pages.status();
  if (absl::Status read = nvme_->Read(ns, meta, *pages); !read.ok()) {
    // A bad record is dropped by the next reader; it is not ours to send.
    return absl::NotFoundError(absl::StrCat("its NVMe copy: ", read.message()));
  }
  pages->Read(0, dst);
  return out;
}

std::vector<absl::Status> BlockStore::WriteToNvme(absl::Span<const NvmeTier::BlockRef> batch) {
  std::vector<absl::Status> results = nvme_->WriteBatch(batch);
  for (size_t i = 0; i < batch.size(); ++i) {
    const NvmeTier::BlockRef& b = batch[i];
    absl::Status& s = results[i];
    if (s.code() == absl::StatusCode::kAlreadyExists) {
      // A record left by an earlier copy of this key; ours replaces it.
      nvme_->Remove(b.ns, b.block->meta());
      s = nvme_->Write(b.ns, *b.block);
    }
    // Full: drop the coldest NVMe-only leaves until this one fits.
    while (s.code() == absl::StatusCode::kResourceExhausted &&
           EvictForRoom(LeafResidency::kNvmeOnly).has_value()) {
      nvme_evicted_.fetch_add(1, std::memory_order_relaxed);
      s = nvme_->Write(b.ns, *b.block);
    }
  }
  return results;
}

uint64_t BlockStore::SpillToLowWatermark() {
  if (nvme_ == nullptr) return 0;
  return Spill(static_cast<uint64_t>(spill_low_ * arena_->capacity_bytes()), SIZE_MAX);
}

uint64_t BlockStore::Spill(uint64_t target_used, size_t max_blocks) {
  uint64_t freed = 0;
  size_t freed_blocks = 0;
  auto done = [&] { return arena_->used_bytes() <= target_used || freed_blocks >= max_blocks; };
  auto drop_host_copy = [&](const SpillCandidate& c) {
    if (uint64_t n = index_->DropHostCopy(c.ns, c.key, c.expected); n > 0) {
      freed += n;
      ++freed_blocks;
      return true;
    }
    return false;
  };
  while (!done()) {
    std::vector<SpillCandidate> candidates = index_->ColdestOnHost(kSpillBatch);
    bool progress = false;
    bool writes_failed = false;
    for (size_t next = 0; next < candidates.size() && !done() && !writes_failed;) {
      // Up to kWriteBatch blocks go to the disk together (queue depth), but
      // no more than it takes to reach the target. Only these are held (so
      // not evicted) while they are written.
      std::vector<const SpillCandidate*> batch;
      std::vector<std::shared_ptr<const CachedBlock>> held;
      uint64_t batch_bytes = 0;
      // What this batch writes of a namespace's tenant, for its NVMe bound.
      const auto pending_of = [&](NamespaceId ns) {
        uint64_t pending = 0;
        if (tenant_quotas_.empty()) return pending;
        const std::string tenant = namespaces_.Name(ns).tenant;
        for (const SpillCandidate* b : batch) {
          if (namespaces_.Name(b->ns).tenant == tenant) pending += b->size;
        }
        return pending;
      };
      auto enough = [&] {
        return batch.size() == kWriteBatch || freed_blocks + batch.size() >= max_blocks ||
               arena_->used_bytes() <= target_used + batch_bytes;
      };
      for (; next < candidates.size() && !enough(); ++next) {
        const SpillCandidate& c = candidates[next];
        if (c.on_nvme) {
          progress |= drop_host_copy(c);
          continue;
        }
        if (!nvme_->Admit(c.hits, c.size)) continue;
        // A tenant at its NVMe bound spills no more; its block stays here.
        if (!MakeNvmeRoom(c.ns, c.size, pending_of(c.ns))) continue;
        std::shared_ptr<const CachedBlock> block = c.block.lock();
        if (block == nullptr || block.get() != c.expected) continue;  // gone meanwhile
        batch.push_back(&c);
        held.push_back(std::move(block));
        batch_bytes += uint64_t{arena_->PagesFor(c.size)} * arena_->page_bytes();
      }
      if (batch.empty()) continue;
      std::vector<NvmeTier::BlockRef> refs;
      for (size_t i = 0; i < batch.size(); ++i) refs.push_back({batch[i]->ns, held[i].get()});
      std::vector<absl::Status> wrote = WriteToNvme(refs);
      for (size_t i = 0; i < batch.size(); ++i) {
        const SpillCandidate& c = *batch[i];
        const bool marked = wrote[i].ok() && index_->MarkOnNvme(c.ns, *held[i]);
        if (wrote[i].ok() && !marked) nvme_->Remove(c.ns, held[i]->meta());  // dropped meanwhile
        held[i].reset();  // our hold would count as a reader
        if (!wrote[i].ok()) {
          // Disabled or failing: the rest stay in DRAM this pass.
          writes_failed |= wrote[i].code() != absl::StatusCode::kResourceExhausted;
          continue;
        }
        if (!marked) continue;
        spilled_blocks_.fetch_add(1, std::memory_order_relaxed);
        progress |= drop_host_copy(c);
      }
    }
    if (!progress) break;
  }
  return freed;
}

bool BlockStore::SpillForRoom(uint64_t bytes) {
  if (!spill_thread_.joinable()) return Spill(0, /*max_blocks=*/1) > 0;  // tests: no thread
  if (!nvme_->writes_open()) return false;  // the disk refuses writes: do not wait on it
  MutexLock lock(&spill_mu_);
  // Wait for a round that starts after this request (one already running
  // may have begun without it), for at most kRoomWait in all.
  const uint64_t round = rounds_started_ + 1;
  room_wanted_ = std::max(room_wanted_, bytes);
  spill_wake_.SignalAll();
  const auto give_up = std::chrono::steady_clock::now() + kRoomWait;
  while (rounds_done_ < round && !stopping_) {
    const auto left = give_up - std::chrono::steady_clock::now();
    if (left <= std::chrono::nanoseconds::zero()) return false;
    spill_done_.WaitFor(&spill_mu_, left);
  }
  // Room may also have come from a round that was already running.
  return last_round_freed_ > 0 || arena_->capacity_bytes() - arena_->used_bytes() >=
                                      arena_->PagesFor(bytes) * uint64_t{arena_->page_bytes()};
}

void BlockStore::SpillLoop() {
  const uint64_t capacity = arena_->capacity_bytes();
  while (true) {
    uint64_t wanted = 0;
    uint64_t round = 0;
    {
      MutexLock lock(&spill_mu_);
      if (stopping_) return;
      if (room_wanted_ == 0) spill_wake_.WaitFor(&spill_mu_, std::chrono::milliseconds(50));
      if (stopping_) return;
      wanted = std::exchange(room_wanted_, 0);
      round = ++rounds_started_;
    }
    // Down to the low watermark, or lower if a put is waiting for more room.
    uint64_t target = static_cast<uint64_t>(spill_low_ * capacity);
    if (wanted > 0) target = std::min(target, capacity - std::min(capacity, wanted));
    uint64_t freed = 0;
    if (wanted > 0 || arena_->used_bytes() > spill_high_ * capacity) {
      freed = Spill(target, SIZE_MAX);
    }
    {
      MutexLock lock(&spill_mu_);
      rounds_done_ = round;
      last_round_freed_ = freed;
    }
    spill_done_.SignalAll();
  }
}

absl::StatusOr<InsertOutcome> BlockStore::Commit(StagedBlock& staged) {
  return staged.Commit(*index_);
}

}  // namespace kvcache
