#include "kvstore/tiers/gpu_tier.h"

#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "key/checksum.h"
#include "common/log.h"

namespace kvcache {
namespace {

// GPU copies the demoter takes from the index per look, and offers the
// mover takes per round.
constexpr size_t kDemoteBatch = 32;
constexpr size_t kOffersPerRound = 256;
// How long the mover sleeps when nothing is offered.
constexpr std::chrono::milliseconds kIdleWait(20);
// Rounds a landed put waits for its host copy to be let go before it
// keeps it (about a second of idle rounds).
constexpr int kMaxDeferrals = 50;

}  // namespace

absl::StatusOr<std::unique_ptr<GpuTier>> GpuTier::Create(const Options& options,
                                                         DeviceMemory& memory, BlockIndex& index,
                                                         HostAllocator allocate_host,
                                                         TenantRoom room) {
  if (!(options.low > 0 && options.low <= options.high && options.high <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("GPU watermarks must satisfy 0 < low (",
                                                   options.low, ") <= high (", options.high,
                                                   ") <= 1"));
  }
  std::unique_ptr<GpuTier> tier(
      new GpuTier(options, memory, index, std::move(allocate_host), std::move(room)));
  if (options.move_in_background) tier->mover_ = std::thread([t = tier.get()] { t->MoveLoop(); });
  return tier;
}

GpuTier::GpuTier(const Options& options, DeviceMemory& memory, BlockIndex& index,
                 HostAllocator allocate_host, TenantRoom room)
    : options_(options),
      memory_(memory),
      index_(index),
      allocate_host_(std::move(allocate_host)),
      room_(std::move(room)) {}

GpuTier::~GpuTier() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  if (mover_.joinable()) mover_.join();
}

uint64_t GpuTier::capacity_bytes() const {
  return uint64_t{memory_.pool().page_count()} * memory_.pool().page_bytes();
}

uint64_t GpuTier::used_bytes() const {
  const DevicePagePool& pool = memory_.pool();
  return uint64_t{pool.page_count() - pool.free_pages()} * pool.page_bytes();
}

std::string GpuTier::failure() const {
  MutexLock lock(&mu_);
  return failure_;
}

void GpuTier::Offer(NamespaceId ns, const BlockKey& key, bool put) {
  if (failed()) return;
  {
    MutexLock lock(&mu_);
    if (offers_.size() >= options_.max_queued) {
      not_admitted_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    offers_.push_back({ns, key, put});
  }
  wake_.SignalAll();
}

void GpuTier::Fail(const absl::Status& status) {
  {
    MutexLock lock(&mu_);
    if (!failure_.empty()) return;
    failure_ = std::string(status.message());
    offers_.clear();
  }
  failed_.store(true, std::memory_order_release);
  Log(LogLevel::kError, absl::StrCat("GPU tier disabled: ", status.message()));
}

absl::Status GpuTier::CopyDown(const DeviceBlock& device, PageRun& pages) {
  if (absl::Status copied = memory_.Download(device.DownloadOps(pages)); !copied.ok()) {
    Fail(copied);
    return absl::InternalError(copied.message());
  }
  ChecksumStream hash;
  pages.ForEachPiece(0, device.size(), [&](const uint8_t* data, size_t len) {
    hash.Update({data, len});
  });
  if (hash.Digest() != device.checksum()) {
    Log(LogLevel::kError, "GPU tier: a block's GPU copy does not match its checksum; dropped");
    return absl::DataLossError("GPU copy does not match the block's checksum");
  }
  return absl::OkStatus();
}

absl::StatusOr<PageRun> GpuTier::CopyToHost(NamespaceId ns, const BlockKey& key) {
  if (failed()) return absl::UnavailableError(absl::StrCat("GPU tier disabled: ", failure()));
  // Our hold keeps the GPU pages from being freed or reused under the copy.
  std::shared_ptr<const DeviceBlock> device = index_.DeviceCopy(ns, key);
  if (device == nullptr) return absl::NotFoundError("no GPU copy");
  absl::StatusOr<PageRun> pages = allocate_host_(device->size());
  if (!pages.ok()) return pages.status();
  if (absl::Status copied = CopyDown(*device, *pages); !copied.ok()) return copied;
  copied_to_host_.fetch_add(1, std::memory_order_relaxed);
  return pages;
}

bool GpuTier::Upload(const Offered& offer) {
  if (offer.drop_host_copy) {
    if (!index_.DropHostCopyAboveDevice(offer.ns, offer.key) && offer.deferrals < kMaxDeferrals) {
      Offered later = offer;
      ++later.deferrals;
      deferred_.push_back(later);
    }
    return false;
  }
  std::shared_ptr<const CachedBlock> source = index_.HostCopyToUpload(offer.ns, offer.key);
  if (source == nullptr) return false;  // gone, or already up
  if (!MakeTenantRoom(offer.ns, source->meta().size)) {
    not_admitted_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  std::shared_ptr<DeviceBlock> device =
      DeviceBlock::Allocate(memory_, source->meta().size, source->meta().checksum);
  if (device == nullptr) {
    not_admitted_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  const std::vector<CopyOp> ops = device->UploadOps(source->pages());
  if (absl::Status copied = memory_.Upload(ops); !copied.ok()) {
    Fail(copied);
    return false;
  }
  if (!index_.InstallDeviceCopy(offer.ns, offer.key, std::move(source), std::move(device))) {
    return false;  // changed meanwhile; the GPU pages went back with `device`
  }
  if (!offer.put) {
    promoted_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  landed_.fetch_add(1, std::memory_order_relaxed);
  if (!index_.DropHostCopyAboveDevice(offer.ns, offer.key)) {
    Offered later = offer;
    later.drop_host_copy = true;
    deferred_.push_back(later);
  }
  return true;
}

bool GpuTier::DemoteOne(DeviceCandidate& c, size_t* freed) {
  if (c.has_copy_below) {
    const bool dropped = index_.DropDeviceCopy(c.ns, c.key, std::move(c.device));
    *freed += dropped;
    return dropped;
  }
  absl::StatusOr<PageRun> pages = allocate_host_(c.size);
  if (!pages.ok()) {
    // The host is full of pinned or staged blocks: drop the coldest leaf
    // that lives only here rather than stop admitting to the GPU.
    c.device.reset();
    return index_
        .EvictOneLeafOf(LeafResidency::kDeviceOnly,
                        room_.demotable == nullptr ? nullptr : room_.demotable())
        .has_value();
  }
  if (absl::Status copied = CopyDown(*c.device, *pages); !copied.ok()) {
    if (failed()) return false;
    c.device.reset();  // a bad copy: the block had no other
    return index_.EvictSubtree(c.ns, c.key, /*dry_run=*/false, MissReason::kIntegrity).ok();
  }
  if (!index_.DropDeviceCopy(c.ns, c.key, std::move(c.device), *std::move(pages))) return false;
  demoted_.fetch_add(1, std::memory_order_relaxed);
  ++*freed;
  return true;
}

bool GpuTier::MakeTenantRoom(NamespaceId ns, uint64_t bytes) {
  if (room_.excess == nullptr || room_.excess(ns, bytes) == 0) return true;
  const std::function<bool(NamespaceId)> mine = room_.tenant_of(ns);
  while (!failed()) {
    std::vector<DeviceCandidate> candidates = index_.ColdestOnDevice(kDemoteBatch, mine);
    bool progress = false;
    size_t freed = 0;
    for (DeviceCandidate& c : candidates) {
      progress |= DemoteOne(c, &freed);
      if (room_.excess(ns, bytes) == 0) return true;
    }
    if (!progress) return false;
  }
  return false;
}

size_t GpuTier::Demote() {
  const DevicePagePool& pool = memory_.pool();
  const auto used = [&] {
    return static_cast<double>(pool.page_count()) - static_cast<double>(pool.free_pages());
  };
  if (used() <= options_.high * pool.page_count()) return 0;
  const double target = options_.low * pool.page_count();
  // Tenants within their GPU bound keep their copies.
  const std::function<bool(NamespaceId)> demotable =
      room_.demotable == nullptr ? nullptr : room_.demotable();
  size_t moved = 0;
  while (used() > target && !failed()) {
    std::vector<DeviceCandidate> candidates = index_.ColdestOnDevice(kDemoteBatch, demotable);
    bool progress = false;
    for (DeviceCandidate& c : candidates) {
      if (used() <= target || failed()) break;
      progress |= DemoteOne(c, &moved);
    }
    if (!progress) break;
  }
  return moved;
}

size_t GpuTier::DropEverything() {
  size_t dropped = 0;
  while (true) {
    std::vector<DeviceCandidate> candidates = index_.ColdestOnDevice(kDemoteBatch);
    if (candidates.empty()) return dropped;
    const size_t before = dropped;
    for (DeviceCandidate& c : candidates) {
      if (c.has_copy_below) {
        dropped += index_.DropDeviceCopy(c.ns, c.key, std::move(c.device));
      } else {
        c.device.reset();
        dropped +=
            index_.EvictSubtree(c.ns, c.key, /*dry_run=*/false, MissReason::kTierDisabled).ok();
      }
    }
    if (dropped == before) return dropped;  // what is left is held; a later round
  }
}

size_t GpuTier::MoveOnce() {
  MutexLock round(&move_mu_);
  if (failed()) return DropEverything();
  size_t moved = Demote();
  std::vector<Offered> offers;
  offers.swap(deferred_);
  {
    MutexLock lock(&mu_);
    while (!offers_.empty() && offers.size() < kOffersPerRound) {
      offers.push_back(offers_.front());
      offers_.pop_front();
    }
  }
  for (const Offered& offer : offers) {
    if (failed()) break;
    if (Upload(offer)) ++moved;
  }
  return moved;
}

void GpuTier::MoveLoop() {
  while (true) {
    {
      MutexLock lock(&mu_);
      if (offers_.empty() && !stopping_) wake_.WaitFor(&mu_, kIdleWait);
      if (stopping_) return;
    }
    MoveOnce();
  }
}

}  // namespace kvcache
