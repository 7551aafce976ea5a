// The bulk data port (proto/data_port_wire.h): a TCP listener beside gRPC
// that serves Fetch replies as raw frames and receives Put payloads straight
// into staging pages. Each connection has its own
// thread, which blocks in read and writev (it is not a gRPC reactor); sends
// come straight from pinned arena pages. Requests are validated and pinned by
// PlanFetch, the same code as the gRPC Fetch. A connection that sends garbage
// is closed; a stalled reader is cut off by a send timeout, releasing pins,
// and a sender that stalls inside a request by the stall timeout, freeing
// its staging. Each connection's staging and pins count against its own
// share of the arena (connection_share.h).
// Puts are admitted and committed by the same code as the gRPC Put stream.
//
// Thread safety: Start and Shutdown from one thread; serving is internal.
#ifndef KVCACHE_KVSTORE_SERVER_DATA_PORT_SERVER_H_
#define KVCACHE_KVSTORE_SERVER_DATA_PORT_SERVER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/byte_stream.h"
#include "common/mutex.h"
#include "common/tls_stream.h"
#include "kvstore/server/connection_threads.h"
#include "kvstore/server/service_context.h"

namespace kvcache {

class DataPortServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";  // an IPv4 or IPv6 literal, or "localhost"
    int port = 0;                    // 0: any free port
    int max_connections = 64;
    absl::Duration send_timeout = absl::Seconds(30);
    // Between requests a connection may idle this long; inside one (a
    // put's header and bytes, a fetch's request) the client may pause at
    // most stall_timeout, or the connection is closed and what it staged
    // freed.
    absl::Duration idle_timeout = absl::Minutes(5);
    absl::Duration stall_timeout = absl::Seconds(10);
    // TLS on every connection (null: plaintext); SetTls replaces it.
    std::shared_ptr<const TlsContext> tls;
  };

  // UNAVAILABLE if the port cannot be bound. `service` is not owned and must
  // outlive the server.
  static absl::StatusOr<std::unique_ptr<DataPortServer>> Start(ServiceContext& service,
                                                               const Options& options);

  int port() const { return port_; }
  // Stops accepting, cuts every connection and joins their threads.
  void Shutdown() { connections_->Shutdown(); }
  // New connections handshake with `tls` (renewed certificates); those
  // open keep theirs.
  void SetTls(std::shared_ptr<const TlsContext> tls) ABSL_LOCKS_EXCLUDED(tls_mu_);
  // Connections closed before anything was served: a failed handshake, a
  // refused token, a request before any identity.
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  // One client connection: its stream, what it may stage and pin (null:
  // unbounded), and who it is once known.
  struct Connection {
    ByteStream& stream;
    std::shared_ptr<ConnectionShare> share;
    std::optional<Identity> who;
  };

  DataPortServer(ServiceContext& service, const Options& options, int port)
      : service_(service), options_(options), port_(port), tls_(options.tls) {}
  void Serve(int fd);
  // Serves one request; false when the connection must close.
  bool ServeOne(Connection& c);
  // An auth frame (data_port_wire.h); `acting`: the kind that names a
  // tenant to act for.
  bool ServeAuth(Connection& c, uint32_t token_length, bool acting);
  // The connection is `who` from now on, with its share.
  void SetIdentity(Connection& c, Identity who);
  bool ServeFetch(Connection& c, uint32_t body_length);
  bool ServePut(Connection& c, uint32_t header_length);
  bool ServeLookup(Connection& c, uint32_t body_length);
  std::shared_ptr<const TlsContext> Tls() const ABSL_LOCKS_EXCLUDED(tls_mu_);

  ServiceContext& service_;
  const Options options_;
  const int port_;
  std::unique_ptr<ConnectionThreads> connections_;
  mutable Mutex tls_mu_;
  std::shared_ptr<const TlsContext> tls_ ABSL_GUARDED_BY(tls_mu_);
  std::atomic<uint64_t> refused_{0};
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_DATA_PORT_SERVER_H_
