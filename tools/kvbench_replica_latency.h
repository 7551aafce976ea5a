// `kvbench cluster`'s replica latency: what a second copy of every block
// costs a put and a fetch. One set of daemons serves two ClusterClients, one
// keeping 1 copy and one 2, which take turns (the order alternating each
// round) putting and then fetching fresh chains over the daemons' network
// path.
#ifndef KVCACHE_TOOLS_KVBENCH_REPLICA_LATENCY_H_
#define KVCACHE_TOOLS_KVBENCH_REPLICA_LATENCY_H_

#include <string>

#include "absl/status/statusor.h"

namespace kvcache {

struct ReplicaLatency {
  // Index 0: 1 replica; index 1: 2 replicas. Microseconds per call of one
  // chain; the median over rounds of each round's p50 and p99.
  double put_p50_us[2] = {0, 0};
  double put_p99_us[2] = {0, 0};
  double fetch_p50_us[2] = {0, 0};
  double fetch_p99_us[2] = {0, 0};
  int chain_blocks = 0;
  uint64_t block_bytes = 0;
};

// `nodes` daemons of `kvstored`, `rounds` rounds (at least 1). INTERNAL if
// a put is not stored or a fetch comes back short or wrong.
absl::StatusOr<ReplicaLatency> MeasureReplicaLatency(const std::string& kvstored, int nodes,
                                                     int rounds);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVBENCH_REPLICA_LATENCY_H_
