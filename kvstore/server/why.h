// The Why RPC: for each key of a request, whether it is cached (and in which
// tiers) or the reason it is not: a drop the index recorded (evicted by
// pressure or an operator, dropped for integrity, refused for a missing
// parent, lost with a failed tier), the key cached in another of the
// tenant's namespaces, or no record at all (never stored, or dropped before
// the record reaches back).
#ifndef KVCACHE_KVSTORE_SERVER_WHY_H_
#define KVCACHE_KVSTORE_SERVER_WHY_H_

#include <string>

#include "absl/status/status.h"
#include "kvcache/v1/kvcache.pb.h"
#include "kvstore/server/service_context.h"

namespace kvcache {

// Fills `response` with one BlockWhy per requested key, in order.
// INVALID_ARGUMENT for a bad namespace or key, or more keys than
// limits.max_keys_per_request. Marks nothing used and counts no hit.
absl::Status ExplainBlocks(ServiceContext& context, const std::string& tenant,
                           const v1::WhyRequest& request, v1::WhyResponse& response);

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_WHY_H_
