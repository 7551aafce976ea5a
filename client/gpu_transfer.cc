#include "client/gpu_transfer.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/staging_plan.h"

namespace kvcache {

using Direction = CopyEngine::Direction;

absl::StatusOr<std::unique_ptr<GpuTransfer>> GpuTransfer::Create(Client* client,
                                                                 const Options& options) {
  if (client == nullptr) return absl::InvalidArgumentError("GpuTransfer needs a client");
  if (options.staging_bytes < 8192) {
    return absl::InvalidArgumentError(
        absl::StrCat("staging of ", options.staging_bytes, " bytes; at least 8 KiB"));
  }
  absl::StatusOr<std::unique_ptr<CopyEngine>> engine = CopyEngine::Create({options.device});
  if (!engine.ok()) return engine.status();
  absl::StatusOr<std::unique_ptr<PinnedBuffer>> staging =
      PinnedBuffer::Create(options.staging_bytes);
  if (!staging.ok()) return staging.status();
  return std::unique_ptr<GpuTransfer>(
      new GpuTransfer(client, options, std::move(*engine), std::move(*staging)));
}

GpuTransfer::GpuTransfer(Client* client, const Options& options, std::unique_ptr<CopyEngine> engine,
                         std::unique_ptr<PinnedBuffer> staging)
    : client_(client),
      engine_(std::move(engine)),
      staging_(std::move(staging)),
      slot_bytes_(staging_->size() / 2),
      use_gpu_leases_(options.use_gpu_leases) {}

GpuTransfer::~GpuTransfer() {
  MutexLock lock(&mu_);
  ReleaseLeases(/*wait=*/true);  // before the pool they copy from is closed
}

void GpuTransfer::ReleaseLeases(bool wait) {
  std::vector<PendingLease> still_running;
  for (PendingLease& p : pending_) {
    // A failed copy is done too: nothing of it runs any more.
    absl::StatusOr<bool> done = wait ? absl::StatusOr<bool>(true) : p.copied.Ready();
    if (wait) p.copied.Wait().IgnoreError();
    if (done.ok() && !*done) {
      still_running.push_back(std::move(p));
      continue;
    }
    p.local->ReleaseLease(p.lease_id);
  }
  pending_ = std::move(still_running);
}

PeerDevicePool* GpuTransfer::PeerPoolFor(const std::shared_ptr<LocalPathClient>& local) {
  if (peer_for_.lock() == local) return peer_.get();
  // Another connection (the daemon restarted, say): the old pool's copies
  // finish before it is closed.
  ReleaseLeases(/*wait=*/true);
  peer_.reset();
  peer_for_ = local;
  const LocalPathClient::GpuPool* pool = local->gpu_pool();
  if (pool == nullptr || pool->ipc_handle.empty()) return nullptr;
  absl::StatusOr<std::unique_ptr<PeerDevicePool>> opened =
      PeerDevicePool::Open(pool->ipc_handle, pool->pci_bus_id, pool->bytes, engine_->device());
  if (opened.ok()) peer_ = std::move(*opened);  // else: another GPU, or refused; stage
  return peer_.get();
}

size_t GpuTransfer::CopyFromDaemonGpu(const std::string& ns,
                                      absl::Span<const DeviceFetchTarget> targets, GpuStream stream,
                                      absl::Status* error) {
  std::shared_ptr<LocalPathClient> local = use_gpu_leases_ ? client_->LocalPath() : nullptr;
  if (local == nullptr) return 0;
  PeerDevicePool* pool = PeerPoolFor(local);
  if (pool == nullptr) return 0;
  v1::FetchRequest request;
  request.set_namespace_(ns);
  for (const DeviceFetchTarget& t : targets) {
    v1::FetchItem* item = request.add_items();
    item->set_key(t.key.data(), t.key.size());
    item->set_offset(t.offset);
    item->set_length(t.bytes);
  }
  absl::StatusOr<LocalPathClient::GpuLease> lease = local->LeaseGpuBlocks(request);
  if (!lease.ok()) {
    // Not on the GPU (or a bad request, which the staged path reports too).
    if (lease.status().code() == absl::StatusCode::kUnavailable) client_->LocalPathFailed();
    return 0;
  }
  std::vector<CopyOp> ops;
  for (const v1::LeasedItem& item : lease->items) {
    uint8_t* dest = static_cast<uint8_t*>(targets[item.item_index()].dest);
    for (const v1::ArenaExtent& e : item.extents()) {
      ops.push_back({dest, pool->At(e.offset()), e.length()});
      dest += e.length();
    }
  }
  absl::StatusOr<CopyTicket> copied = pool->CopyOut(ops, stream);
  if (!copied.ok()) {
    local->ReleaseLease(lease->lease_id);  // nothing of it is in flight
    *error = copied.status();
    return 0;
  }
  pending_.push_back({std::move(*copied), std::move(local), lease->lease_id});
  gpu_leased_blocks_.fetch_add(lease->items.size(), std::memory_order_relaxed);
  return lease->items.size();
}

FetchResult GpuTransfer::FetchToDevice(const std::string& ns,
                                       absl::Span<const DeviceFetchTarget> targets,
                                       GpuStream stream) {
  FetchResult result;
  std::vector<uint64_t> sizes;
  for (const DeviceFetchTarget& t : targets) {
    if (t.dest == nullptr || t.bytes == 0) {
      result.status = absl::InvalidArgumentError("a device fetch target has no destination");
      return result;
    }
    if (t.bytes > slot_bytes_) {
      // Fetched in ranges, a block would reach the GPU unverified.
      result.status = absl::InvalidArgumentError(
          absl::StrCat("a device fetch target of ", t.bytes, " bytes does not fit a staging slot (",
                       slot_bytes_, " bytes, half of Options::staging_bytes)"));
      return result;
    }
    sizes.push_back(t.bytes);
  }
  MutexLock lock(&mu_);
  ReleaseLeases(/*wait=*/false);
  const size_t leased = CopyFromDaemonGpu(ns, targets, stream, &result.status);
  result.blocks = leased;
  result.tiers.assign(leased, v1::TIER_GPU);
  if (!result.status.ok() || leased == targets.size()) return result;
  targets = targets.subspan(leased);
  sizes.erase(sizes.begin(), sizes.begin() + leased);

  if (absl::Status ordered = engine_->After(Direction::kToDevice, stream); !ordered.ok()) {
    result.status = ordered;
    return result;
  }
  CopyTicket uploading[2];  // per staging slot: its last upload
  std::vector<FetchTarget> fetch;
  std::vector<CopyOp> uploads;
  const std::vector<std::vector<StagedPiece>> rounds = PlanStagingRounds(sizes, slot_bytes_);
  for (size_t r = 0; r < rounds.size(); ++r) {
    CopyTicket& slot_ticket = uploading[r % 2];
    uint8_t* slot = staging_->data() + (r % 2) * slot_bytes_;
    if (slot_ticket.valid()) {
      // The slot's previous bytes must be on the GPU before it is refilled.
      if (absl::Status done = slot_ticket.Wait(); !done.ok()) {
        result.status = done;
        result.blocks = leased;  // the staged ones may not be in place
        break;
      }
      slot_ticket = CopyTicket();
    }
    const std::vector<StagedPiece>& pieces = rounds[r];  // one per target: each fits a slot
    fetch.clear();
    for (const StagedPiece& p : pieces) {
      fetch.push_back(
          {targets[p.item].key, absl::MakeSpan(slot + p.staging, p.bytes), targets[p.item].offset});
    }
    FetchResult got = client_->Fetch(ns, fetch);
    uploads.clear();
    for (size_t i = 0; i < got.blocks; ++i) {
      const StagedPiece& p = pieces[i];
      uploads.push_back({targets[p.item].dest, slot + p.staging, p.bytes});
    }
    if (!uploads.empty()) {
      absl::StatusOr<CopyTicket> ticket = engine_->Submit(Direction::kToDevice, uploads);
      if (!ticket.ok()) {
        result.status = ticket.status();
        break;
      }
      slot_ticket = std::move(*ticket);
    }
    result.blocks += got.blocks;
    result.tiers.insert(result.tiers.end(), got.tiers.begin(), got.tiers.end());
    if (got.blocks < pieces.size()) {
      result.status = got.status;
      break;
    }
  }
  // On every way out, the worker's stream waits for the uploads still in
  // flight (the host does not), so none can land after the worker's later
  // writes to those buffers, whether the fetch counted them or not.
  for (CopyTicket& ticket : uploading) {
    if (!ticket.valid()) continue;
    if (absl::Status chained = ticket.ChainTo(stream); !chained.ok()) {
      if (absl::Status done = ticket.Wait(); !done.ok()) {
        result.status = done;
        result.blocks = leased;  // the staged ones may not be in place
      }
    }
  }
  result.tiers.resize(std::min(result.tiers.size(), result.blocks));
  return result;
}

absl::StatusOr<std::vector<v1::PutOutcome>> GpuTransfer::PutFromDevice(
    const std::string& ns, const BlockKey& parent, absl::Span<const DevicePutBlock> blocks,
    GpuStream stream) {
  std::vector<uint64_t> sizes;
  std::vector<PutBlock> puts(blocks.size());
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i].src == nullptr || blocks[i].bytes == 0) {
      return absl::InvalidArgumentError("a device put block has no source");
    }
    sizes.push_back(blocks[i].bytes);
    puts[i].key = blocks[i].key;
    puts[i].evict_first = blocks[i].evict_first;
    puts[i].root = blocks[i].root;
    puts[i].payload.resize(blocks[i].bytes);
  }
  {
    MutexLock lock(&mu_);
    if (absl::Status ordered = engine_->After(Direction::kToHost, stream); !ordered.ok()) {
      return ordered;
    }
    // Puts need the bytes on the host before sending, so the whole buffer
    // is one slot and each round waits.
    std::vector<CopyOp> downloads;
    for (const std::vector<StagedPiece>& round : PlanStagingRounds(sizes, staging_->size())) {
      downloads.clear();
      for (const StagedPiece& p : round) {
        downloads.push_back({staging_->data() + p.staging,
                             static_cast<const uint8_t*>(blocks[p.item].src) + p.offset, p.bytes});
      }
      absl::StatusOr<CopyTicket> ticket = engine_->Submit(Direction::kToHost, downloads);
      if (!ticket.ok()) return ticket.status();
      if (absl::Status done = ticket->Wait(); !done.ok()) return done;
      for (const StagedPiece& p : round) {
        std::memcpy(puts[p.item].payload.data() + p.offset, staging_->data() + p.staging, p.bytes);
      }
    }
  }
  return client_->Put(ns, parent, puts);
}

}  // namespace kvcache
