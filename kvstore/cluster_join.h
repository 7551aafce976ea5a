// How kvstored takes part in a cluster (kvstored --etcd): it registers its
// address in etcd under a lease that it renews (so clients find it, and drop
// it when it dies), and, keeping more than one copy of each block, it watches
// the member list to repair those copies (repair/replica_repairer.h).
#ifndef KVCACHE_KVSTORE_CLUSTER_JOIN_H_
#define KVCACHE_KVSTORE_CLUSTER_JOIN_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/channel_security.h"
#include "membership/etcd_members.h"
#include "membership/etcd_registration.h"
#include "kvstore/store/block_store.h"
#include "repair/replica_repairer.h"

namespace kvcache {

struct ClusterJoinOptions {
  std::string etcd;  // endpoints
  std::string prefix = "/kvcache/nodes/";
  std::string advertise;  // the address other hosts dial; empty: `bound`
  std::string bound;      // the address the gRPC server listens on
  absl::Duration ttl = absl::Seconds(5);
  int replicas = 2;
  uint64_t repair_bytes_per_second = 64ull << 20;
  // TLS and a client certificate for etcd; and how repair reaches its peers
  // (their CA, this daemon's certificate, a token of tenant default).
  ChannelSecurity etcd_security;
  ChannelSecurity peer_security;
};

// Registers this daemon's address under options.prefix. INVALID_ARGUMENT
// for a ttl under 2 s, or a wildcard or Unix `bound` with no `advertise`
// (nobody could dial it).
absl::StatusOr<std::unique_ptr<EtcdRegistration>> RegisterInEtcd(
    const ClusterJoinOptions& options);

// Starts repairing `store`'s copies on options.replicas members, fed by a
// watch of the member list. `store` outlives both; destroy *watch first.
absl::Status StartRepair(BlockStore& store, const ClusterJoinOptions& options,
                         std::unique_ptr<ReplicaRepairer>* repairer,
                         std::unique_ptr<EtcdMembers>* watch);

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_CLUSTER_JOIN_H_
