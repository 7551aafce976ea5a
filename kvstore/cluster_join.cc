#include "kvstore/cluster_join.h"

#include "absl/strings/match.h"
#include "kvstore/server/service_context.h"

namespace kvcache {
namespace {

// What other nodes and clients dial.
absl::StatusOr<std::string> Advertised(const ClusterJoinOptions& options) {
  if (!options.advertise.empty()) return options.advertise;
  const std::string& bound = options.bound;
  if (absl::StartsWith(bound, "0.0.0.0:") || absl::StartsWith(bound, "[::]:") ||
      absl::StartsWith(bound, "unix:")) {
    return absl::InvalidArgumentError(
        "--etcd: give --advertise=HOST:PORT, the address other hosts dial (listening on " + bound +
        ")");
  }
  return bound;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdRegistration>> RegisterInEtcd(
    const ClusterJoinOptions& options) {
  absl::StatusOr<std::string> address = Advertised(options);
  if (!address.ok()) return address.status();
  if (options.ttl < absl::Seconds(2)) {
    return absl::InvalidArgumentError("--etcd_ttl_s must be at least 2");
  }
  EtcdRegistrationOptions registration;
  registration.etcd = options.etcd;
  registration.prefix = options.prefix;
  registration.address = *address;
  registration.ttl = options.ttl;
  registration.etcd_security = options.etcd_security;
  return EtcdRegistration::Create(registration);
}

absl::Status StartRepair(BlockStore& store, const ClusterJoinOptions& options,
                         std::unique_ptr<ReplicaRepairer>* repairer,
                         std::unique_ptr<EtcdMembers>* watch) {
  absl::StatusOr<std::string> address = Advertised(options);
  if (!address.ok()) return address.status();
  ReplicaRepairer::Options repair;
  repair.self = *address;
  repair.replicas = options.replicas;
  repair.bytes_per_second = options.repair_bytes_per_second;
  repair.node.deadline = absl::Seconds(5);
  repair.node.use_local_path = false;  // peers are other daemons, maybe on other hosts
  repair.node.security = options.peer_security;
  *repairer = std::make_unique<ReplicaRepairer>(store, repair);
  EtcdMembersOptions members;
  members.etcd = options.etcd;
  members.prefix = options.prefix;
  members.etcd_security = options.etcd_security;
  ReplicaRepairer* r = repairer->get();
  absl::StatusOr<std::unique_ptr<EtcdMembers>> made = EtcdMembers::Create(
      members, [r](const std::vector<std::string>& list) { r->SetMembers(list); });
  if (!made.ok()) return made.status();
  *watch = std::move(*made);
  return absl::OkStatus();
}

}  // namespace kvcache
