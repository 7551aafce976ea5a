#include "kvstore/server/fetch_plan.h"

#include "absl/strings/str_cat.h"

namespace kvcache {
namespace {

uint32_t TierOf(ReadSource source) {
  switch (source) {
    case ReadSource::kGpu:
      return v1::TIER_GPU;
    case ReadSource::kNvme:
      return v1::TIER_NVME;
    case ReadSource::kHost:
      break;
  }
  return v1::TIER_HOST;
}

// The request's keys, or why it is malformed.
absl::StatusOr<std::vector<BlockKey>> ParseRequest(const v1::FetchRequest& request,
                                                   const ServiceLimits& limits) {
  if (absl::Status s = ValidateNamespace(request.namespace_(), limits); !s.ok()) return s;
  if (request.items_size() == 0) return absl::InvalidArgumentError("fetch of no items");
  if (request.items_size() > static_cast<int>(limits.max_fetch_items)) {
    return absl::InvalidArgumentError(absl::StrCat("fetch of ", request.items_size(),
                                                   " items; at most ", limits.max_fetch_items));
  }
  std::vector<BlockKey> keys;
  keys.reserve(request.items_size());
  for (int i = 0; i < request.items_size(); ++i) {
    absl::StatusOr<BlockKey> key = BlockKey::FromBytes(request.items(i).key());
    if (!key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("item ", i, ": ", key.status().message()));
    }
    keys.push_back(*key);
  }
  return keys;
}

// One past the last byte item `i` asks for, of a block of `size` bytes, or
// OUT_OF_RANGE.
absl::StatusOr<uint64_t> RangeEnd(const v1::FetchItem& item, int i, uint64_t size) {
  if (item.offset() > size || item.length() > size - item.offset()) {
    return absl::OutOfRangeError(absl::StrCat("item ", i, ": range [", item.offset(), ", +",
                                              item.length(), ") is outside the ", size,
                                              "-byte block"));
  }
  return item.length() == 0 ? size : item.offset() + item.length();
}

}  // namespace

absl::StatusOr<FetchPlan> PlanFetch(ServiceContext& service, const std::string& tenant,
                                    std::shared_ptr<ConnectionShare> share,
                                    const v1::FetchRequest& request, absl::Time deadline) {
  const ServiceLimits& limits = service.limits;
  absl::StatusOr<std::vector<BlockKey>> keys = ParseRequest(request, limits);
  if (!keys.ok()) return keys.status();
  FetchPlan plan;
  plan.chunk_bytes = request.max_chunk_bytes() == 0
                         ? limits.max_chunk_bytes
                         : std::min(request.max_chunk_bytes(), limits.max_chunk_bytes);
  plan.chunk_bytes = std::max<uint32_t>(plan.chunk_bytes, 4096);

  std::optional<NamespaceId> ns = service.store.namespaces().Find(tenant, request.namespace_());
  uint64_t charged = 0;
  absl::Status over_share;
  std::optional<MissReason> miss;
  if (!ns.has_value()) miss = MissReason::kNeverStored;
  const bool has_deadline = deadline != absl::InfiniteFuture();
  for (int i = 0; ns.has_value() && i < request.items_size(); ++i) {
    // A block read from NVMe may take a while: none for a caller gone.
    if (has_deadline && absl::Now() >= deadline) {
      miss = MissReason::kDeadline;
      break;
    }
    ReadSource source = ReadSource::kHost;
    MissReason why = MissReason::kNeverStored;
    std::optional<BlockPin> pin = service.store.PinForRead(*ns, (*keys)[i], &source, &why);
    if (!pin.has_value()) {  // the cached prefix ends here
      miss = why;
      break;
    }
    absl::StatusOr<uint64_t> end = RangeEnd(request.items(i), i, pin->meta().size);
    if (!end.ok()) return end.status();
    // Ranges of one block asked for one after another pin it once.
    const bool same_block =
        !plan.items.empty() && &plan.items.back().pin.block() == &pin->block();
    if (share != nullptr && !same_block) {
      over_share = share->Charge(pin->meta().size, "pinned");
      if (!over_share.ok()) break;
      charged += pin->meta().size;
    }
    plan.items.push_back(FetchPlanItem{static_cast<uint32_t>(i), *std::move(pin),
                                       request.items(i).offset(), *end, TierOf(source)});
  }
  plan.charge = ShareCharge(std::move(share), charged);
  if (miss.has_value() && service.counters.request_metrics) {
    service.counters.CountMiss(RequestOp::kFetch, *miss);
  }
  if (plan.items.empty()) {
    if (!over_share.ok()) return over_share;
    if (miss == MissReason::kDeadline) {
      return absl::DeadlineExceededError("the fetch's deadline passed before its first block");
    }
    return absl::NotFoundError(absl::StrCat("block ", (*keys)[0].ToHex(), " is not cached"));
  }
  service.counters.fetches.fetch_add(1, std::memory_order_relaxed);
  return plan;
}

absl::StatusOr<std::vector<GpuLeaseItem>> PlanGpuLease(ServiceContext& service,
                                                       const std::string& tenant,
                                                       const v1::FetchRequest& request) {
  absl::StatusOr<std::vector<BlockKey>> keys = ParseRequest(request, service.limits);
  if (!keys.ok()) return keys.status();
  const GpuTier* gpu = service.store.gpu();
  if (gpu == nullptr || gpu->failed()) {
    return absl::FailedPreconditionError("this daemon has no GPU tier in service");
  }
  std::vector<GpuLeaseItem> items;
  std::optional<NamespaceId> ns = service.store.namespaces().Find(tenant, request.namespace_());
  for (int i = 0; ns.has_value() && i < request.items_size(); ++i) {
    std::shared_ptr<const DeviceBlock> device =
        service.store.ReadDeviceCopy(*ns, (*keys)[i]);
    if (device == nullptr) break;  // the run on the GPU ends here
    absl::StatusOr<uint64_t> end = RangeEnd(request.items(i), i, device->size());
    if (!end.ok()) return end.status();
    items.push_back(
        GpuLeaseItem{static_cast<uint32_t>(i), std::move(device), request.items(i).offset(), *end});
  }
  if (items.empty()) {
    return absl::NotFoundError(absl::StrCat("block ", (*keys)[0].ToHex(), " has no GPU copy"));
  }
  service.counters.fetches.fetch_add(1, std::memory_order_relaxed);
  service.counters.gpu_leased_blocks.fetch_add(items.size(), std::memory_order_relaxed);
  return items;
}

}  // namespace kvcache
