// The daemon's ways around gRPC for bulk bytes: the same-host path (a Unix
// socket and the shared arena) and the data port (plain TCP). They are
// learned from Hello once; a path that fails is set aside for a few seconds
// (Hello is asked again afterwards, in case the daemon restarted), and the
// caller falls back to the next path: local, then data port, then gRPC.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_CLIENT_FAST_PATHS_H_
#define KVCACHE_CLIENT_FAST_PATHS_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/data_port_client.h"
#include "client/local_path_client.h"
#include "common/mutex.h"
#include "kvcache/v1/kvcache.grpc.pb.h"

namespace kvcache {

class FastPaths {
 public:
  struct Options {
    std::string address;  // the daemon's gRPC host:port
    absl::Duration timeout;
    bool use_local_path = true;
    bool use_direct_reads = true;  // with the local path (Client::Options)
    bool use_data_port = true;
    size_t max_idle_connections = 8;
  };
  struct Set {
    std::shared_ptr<LocalPathClient> local;
    std::shared_ptr<DataPortClient> data_port;
    bool data_port_lookup = false;  // the data port answers Lookup too
  };

  // `stub` is not owned and must outlive this.
  FastPaths(const Options& options, v1::KvCache::Stub* stub) : options_(options), stub_(stub) {}

  // The paths usable now (either may be null).
  Set Get() ABSL_LOCKS_EXCLUDED(mu_);
  // Whether the daemon reads LookupRequest.packed_keys. Asks Hello first if
  // it is not known yet; Hello's error if the daemon does not answer.
  absl::StatusOr<bool> PackedLookup() ABSL_LOCKS_EXCLUDED(mu_);
  // A transport error on that path: leave it alone for a while.
  void LocalFailed() ABSL_LOCKS_EXCLUDED(mu_);
  void DataPortFailed() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  std::shared_ptr<DataPortClient> MakeDataPort(uint32_t port) const;
  // Asks Hello unless it is known; its error if the daemon did not answer.
  absl::Status KnowHello() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  v1::KvCache::Stub* const stub_;  // not owned
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
