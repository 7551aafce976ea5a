// kvstored's parts, started and stopped as one: the block store, the gRPC
// service, the data port, the same-host path, /metrics and the cluster
// membership. kvstored.cc makes the options from its flags and starts one;
// a test can start one in its own process and stop it, with no binary and
// no port file (tests/in_process_daemon_test.cc).
//
// Thread safety: Start and Stop are called by one thread; the parts serve
// from their own threads in between.
#ifndef KVCACHE_KVSTORE_DAEMON_H_
#define KVCACHE_KVSTORE_DAEMON_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "kvstore/server/authenticator.h"
#include "kvstore/store/block_store.h"
#include "kvstore/cluster_join.h"
#include "kvstore/store/connection_share.h"
#include "kvstore/server/data_port_server.h"
#include "kvstore/store/io_workers.h"
#include "kvstore/server/kvcache_service.h"
#include "kvstore/server/local_path_server.h"
#include "kvstore/server/metrics_server.h"
#include "kvstore/server/service_context.h"
#include "kvstore/server/stall_watchdog.h"

namespace kvcache {

// What kvstored's flags say, one field per flag (kvstored --help explains
// each); the defaults here are for tests: port 0, everything on loopback.
struct DaemonOptions {
  std::string listen = "127.0.0.1:0";
  // Serve a non-loopback --listen without TLS and authentication.
  bool insecure = false;
  // TLS on gRPC: both PEM files, or neither (plaintext). With client_ca,
  // every client must present a certificate it signed (mutual TLS). gRPC
  // re-reads the three files within a second of a change.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  // Who callers are (tokens, certificate names, same-host uids).
  Authenticator::Options auth;
  BlockStore::Options store;
  ServiceLimits limits;
  uint64_t max_message_bytes = 64ull << 20;
  int max_concurrent_streams = 256;
  double connection_share = 0.25;
  // What all of one tenant's connections may stage and pin together, as a
  // fraction of the host arena; 1: no bound beyond the arena.
  double tenant_share = 1.0;
  absl::Duration stall_timeout = absl::Seconds(30);
  bool request_metrics = true;
  int nvme_queue_depth = 64;
  // "off", "auto" (/tmp/kvstored-<pid>.sock) or a path.
  std::string local_socket = "off";
  absl::Duration lease_ttl = absl::Seconds(30);
  uint64_t local_staging_bytes = 256ull << 20;
  std::string local_allowed_uids = "self";  // as the flag: numbers and "self"
  std::string local_allowed_gids;
  int data_port = 0;  // -1: off; 0: any free port
  int data_port_max_connections = 256;
  std::string metrics_listen = "off";  // host:port or off
  // What the banner says when the operator's --metrics_listen was the default.
  bool metrics_listen_is_default = false;
  // Cluster membership; none when join.etcd is empty.
  ClusterJoinOptions join;
  std::string repair_rate_text;  // as the operator wrote it, for the banner
  bool local_direct_reads = true;  // as asked, for the banner
  bool local_follow_cpu = true;    // LocalPathServer::Options::follow_cpu
};

class Daemon {
 public:
  // Starts every part the options name. INVALID_ARGUMENT for options that do
  // not fit together (kvstored exits 2 for those), another error for a part
  // that could not start (exit 1); the message says which and why.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const DaemonOptions& options);
  // Stop(zero) if not stopped yet.
  ~Daemon();

  // The address and port gRPC is bound to ("127.0.0.1:41233").
  const std::string& bound() const { return bound_; }
  int port() const { return port_; }
  // What kvstored prints once serving: where each part is, or why it is off.
  std::string Banner() const;

  // Leaves the cluster (clients stop sending here), lets calls in flight
  // finish for up to `drain`, then stops every part. Once only; later calls
  // do nothing.
  void Stop(absl::Duration drain);

  // What SIGHUP does: reads the token file and the data port's certificates
  // again (gRPC re-reads its own as they change). On error what is in force
  // stays, and it says why.
  absl::Status Reload();

 private:
  Daemon() = default;
  // Each part, in the order they start; each sets its banner line.
  absl::Status StartSecurity(const DaemonOptions& options);
  absl::Status StartStore(const DaemonOptions& options);
  absl::Status StartLocalPath(const DaemonOptions& options);
  absl::Status StartMetrics(const DaemonOptions& options);
  absl::Status StartGrpc(const DaemonOptions& options);
  absl::Status StartDataPort(const DaemonOptions& options);
  absl::Status JoinCluster(const DaemonOptions& options);

  // Declared in the order they start: destroyed in reverse, so nothing
  // outlives what it uses (the service and servers use the context and the
  // store; the watch feeds the repairer).
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<BlockStore> store_;
  std::unique_ptr<IoWorkers> io_workers_;
  std::unique_ptr<ConnectionShares> shares_;
  std::unique_ptr<StallWatchdog> stall_watchdog_;
  std::unique_ptr<ServiceContext> context_;
  std::unique_ptr<LocalPathServer> local_path_;
  std::unique_ptr<KvCacheService> service_;
  std::unique_ptr<MetricsServer> metrics_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<DataPortServer> data_port_;
  std::unique_ptr<EtcdRegistration> membership_;
  std::unique_ptr<ReplicaRepairer> repairer_;
  std::unique_ptr<EtcdMembers> member_watch_;

  std::string bound_;
  int port_ = 0;
  std::string tls_cert_, tls_key_, tls_client_ca_;  // for Reload
  bool stopped_ = false;
  // The banner's lines.
  std::string security_line_, host_line_, data_port_line_, local_line_, gpu_line_, nvme_line_, cluster_line_,
      metrics_line_;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_DAEMON_H_
