// `kvbench cluster`: replays the production trace through N kvstored nodes
// used as one tier (ClusterClient) and through one node of the same total
// capacity, in trace order, and reports the hit ratios, how evenly the nodes
// hold bytes and how the fetched bytes split between them.
#ifndef KVCACHE_TOOLS_KVBENCH_CLUSTER_H_
#define KVCACHE_TOOLS_KVBENCH_CLUSTER_H_

#include <string>

namespace kvcache {

// Returns the process exit status. `kvstored` is the daemon binary.
int RunClusterBench(const std::string& kvstored, bool json);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVBENCH_CLUSTER_H_
