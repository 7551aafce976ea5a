// What a fetch will send, decided once for both data paths (the gRPC Fetch
// stream and the bulk data port): the request is validated, and the leading
// run of cached blocks is pinned (stopping at the first miss, like Lookup).
#ifndef KVCACHE_KVSTORE_FETCH_PLAN_H_
#define KVCACHE_KVSTORE_FETCH_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kvcache/v1/kvcache.pb.h"
#include "kvstore/cached_block.h"
#include "kvstore/service_context.h"

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
};

// INVALID_ARGUMENT for a bad request, NOT_FOUND if the first block is not
// cached, OUT_OF_RANGE for a range outside its block. Counts the fetch.
absl::StatusOr<FetchPlan> PlanFetch(ServiceContext& service, const std::string& tenant,
                                    const v1::FetchRequest& request);

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_FETCH_PLAN_H_
