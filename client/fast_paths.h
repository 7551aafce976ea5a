// The paths from a client to one daemon, fastest first: the same-host path
// (a Unix socket and the shared arena), the data port (plain TCP), and
// gRPC, which is always last. The first two are learned from Hello once; a
// path whose transport fails is set aside for a few seconds (Hello is asked
// again afterwards, in case the daemon restarted), and the caller goes on
// to the next path.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_CLIENT_FAST_PATHS_H_
#define KVCACHE_CLIENT_FAST_PATHS_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/data_port_client.h"
#include "client/grpc_transport.h"
#include "client/local_path_client.h"
#include "common/mutex.h"
#include "kvcache/v1/kvcache.pb.h"

namespace kvcache {

class FastPaths {
 public:
  struct Options {
    std::string address;  // the daemon's gRPC host:port
    absl::Duration timeout;
    bool use_local_path = true;
    LocalPathClient::Options local;  // with the local path (ClientOptions)
    bool use_data_port = true;
    bool verify_checksums = true;  // of blocks fetched over the data port
    absl::Duration lookup_spin;    // a data-port lookup's spin for its reply
    size_t max_idle_connections = 8;
    // The data port's TLS (null: plaintext) and token, as gRPC's.
    std::shared_ptr<const TlsContext> tls;
    std::string tls_server_name;  // "": the address's host
    std::string token;
    std::string act_for_tenant;
  };
  // The paths usable now, fastest first; the last is always gRPC.
  using Ladder = absl::InlinedVector<std::shared_ptr<Transport>, 3>;

  FastPaths(const Options& options, std::shared_ptr<GrpcTransport> grpc)
      : options_(options), grpc_(std::move(grpc)) {}

  Ladder Get() ABSL_LOCKS_EXCLUDED(mu_);
  // The same-host path, if it is usable now (null otherwise).
  std::shared_ptr<LocalPathClient> Local() ABSL_LOCKS_EXCLUDED(mu_);
  // A transport error on that path: leave it alone for a while (gRPC is
  // never set aside).
  void Failed(ClientPath path) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Connects what Hello offers and is not set aside; false if the daemon
  // does not answer Hello (then only gRPC is tried).
  bool Refresh() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<DataPortClient> MakeDataPort(uint32_t port, bool serves_lookup) const;
  // Asks Hello unless it is known; its error if the daemon did not answer.
  absl::Status KnowHello() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  const std::shared_ptr<GrpcTransport> grpc_;
  Mutex mu_;
  bool hello_known_ ABSL_GUARDED_BY(mu_) = false;
  v1::HelloResponse hello_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<LocalPathClient> local_ ABSL_GUARDED_BY(mu_);
  absl::Time local_retry_after_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::shared_ptr<DataPortClient> data_port_ ABSL_GUARDED_BY(mu_);
  absl::Time data_port_retry_after_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_FAST_PATHS_H_
