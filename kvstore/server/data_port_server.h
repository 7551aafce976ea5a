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

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
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
  };

  // UNAVAILABLE if the port cannot be bound. `service` is not owned and must
  // outlive the server.
  static absl::StatusOr<std::unique_ptr<DataPortServer>> Start(ServiceContext& service,
                                                               const Options& options);

  int port() const { return port_; }
  // Stops accepting, cuts every connection and joins their threads.
  void Shutdown() { connections_->Shutdown(); }

 private:
  DataPortServer(ServiceContext& service, const Options& options, int port)
      : service_(service), options_(options), port_(port) {}
  void Serve(int fd);
  // Serves one request; false when the connection must close.
  // `share` (null: none) bounds what the connection stages and pins.
  bool ServeOne(int fd, const std::shared_ptr<ConnectionShare>& share);
  bool ServeFetch(int fd, uint32_t body_length, const std::shared_ptr<ConnectionShare>& share);
  bool ServePut(int fd, uint32_t header_length, const std::shared_ptr<ConnectionShare>& share);
  bool ServeLookup(int fd, uint32_t body_length);

  ServiceContext& service_;
  const Options options_;
  const int port_;
  std::unique_ptr<ConnectionThreads> connections_;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_DATA_PORT_SERVER_H_
