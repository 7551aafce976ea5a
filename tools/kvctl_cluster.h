// kvctl against many kvstored nodes at once (--peers or --etcd): the member
// list, each node's answers gathered in parallel, and how they are merged.
#ifndef KVCACHE_TOOLS_KVCTL_CLUSTER_H_
#define KVCACHE_TOOLS_KVCTL_CLUSTER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/channel_security.h"
#include "kvcache/v1/kvcache.pb.h"

namespace kvcache {

// The cluster's node addresses: `peers` (comma-separated), or the members
// registered under `etcd_prefix` in etcd at `etcd` (read once). An error
// names what was wrong: both given, a repeated peer, etcd unreachable, or
// no members registered.
absl::StatusOr<std::vector<std::string>> ClusterMembers(const std::string& peers,
                                                        const std::string& etcd,
                                                        const std::string& etcd_prefix,
                                                        absl::Duration timeout,
                                                        const ChannelSecurity& etcd_security);

// One node's answer to a call, or why there is none.
template <typename Response>
struct NodeAnswer {
  std::string address;
  absl::StatusOr<Response> response;
};

// Counters and tier sizes summed over the nodes that answered; a tier is on
// if it is on anywhere; uptime is the longest.
v1::StatsResponse SumStats(const std::vector<NodeAnswer<v1::StatsResponse>>& nodes);
// One row per node, then the cluster's total as FormatStats shows one node.
std::string FormatClusterStats(const std::vector<NodeAnswer<v1::StatsResponse>>& nodes);
// The nodes' prefixes as one list: a root held by several nodes (a chain's
// first block is on every node) is one row, `holders[i]` nodes hold row i.
v1::ListResponse MergePrefixes(const std::vector<NodeAnswer<v1::ListResponse>>& nodes,
                               std::vector<int>* holders);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVCTL_CLUSTER_H_
