// What the Stats RPC (and /metrics, which renders the same) reports: each
// tier's state and traffic, request latency and bytes by path and
// operation, misses by reason, per-tenant usage, and the daemon's other
// counters, read from the store and the service's counters as of now.
#ifndef KVCACHE_KVSTORE_SERVER_SERVICE_STATS_H_
#define KVCACHE_KVSTORE_SERVER_SERVICE_STATS_H_

#include "kvcache/v1/kvcache.pb.h"
#include "kvstore/server/service_context.h"

namespace kvcache {

// Fills every field of `response` but metrics_address (which the Stats
// handler sets: /metrics calls this from its own thread, possibly before
// the daemon knows its address). Thread-safe.
void FillStats(ServiceContext& context, v1::StatsResponse& response);

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_SERVICE_STATS_H_
