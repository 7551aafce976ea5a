// What a fetch will send, decided once for both data paths (the gRPC Fetch
// stream and the bulk data port): the request is validated, and the leading
// run of cached blocks is pinned (stopping at the first miss, like Lookup).
#ifndef KVCACHE_KVSTORE_SERVER_FETCH_PLAN_H_
#define KVCACHE_KVSTORE_SERVER_FETCH_PLAN_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kvcache/v1/kvcache.pb.h"
#include "kvstore/index/cached_block.h"
#include "kvstore/index/device_block.h"
#include "kvstore/server/service_context.h"

namespace kvcache {

struct FetchPlanItem {
  uint32_t index;  // in the request
  BlockPin pin;
  uint64_t offset;  // next byte to send
  uint64_t end;     // one past the last byte to send
  uint32_t tier;    // v1::Tier it was served from (NVME or GPU if copied up/down for this fetch)
};

struct FetchPlan {
  std::vector<FetchPlanItem> items;
  uint32_t chunk_bytes = 0;
  // The pinned blocks' bytes, charged to the connection's share; keep it
  // until the pins are gone.
  ShareCharge charge;
};

// INVALID_ARGUMENT for a bad request, NOT_FOUND if the first block is not
// cached, OUT_OF_RANGE for a range outside its block. Counts the fetch.
// The pinned blocks count against `share` (null: none): the plan ends before
// the first block that would pass it, like at a miss, and is
// RESOURCE_EXHAUSTED if not even the first fits. Past `deadline` no more
// blocks are read (DEADLINE_EXCEEDED if none was). A plan that ends at a
// miss counts it, by reason.
absl::StatusOr<FetchPlan> PlanFetch(ServiceContext& service, const std::string& tenant,
                                    std::shared_ptr<ConnectionShare> share,
                                    const v1::FetchRequest& request,
                                    absl::Time deadline = absl::InfiniteFuture());

// One block of a same-host worker's GPU lease: while `device` is held its
// pages are neither reused nor freed, even if the block is evicted.
struct GpuLeaseItem {
  uint32_t index;  // in the request
  std::shared_ptr<const DeviceBlock> device;
  uint64_t offset;
  uint64_t end;
};

// The leading run of requested blocks that have a GPU copy, each held.
// Errors as PlanFetch, but NOT_FOUND if the first block has no GPU copy (it
// may still be cached below: the worker fetches it the ordinary way), and
// FAILED_PRECONDITION without a GPU tier or once it is disabled. Counts the
// fetch and the leased blocks.
absl::StatusOr<std::vector<GpuLeaseItem>> PlanGpuLease(ServiceContext& service,
                                                       const std::string& tenant,
                                                       const v1::FetchRequest& request);

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_FETCH_PLAN_H_
