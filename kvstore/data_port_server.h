// The bulk data port (proto/data_port_wire.h): a TCP listener beside gRPC
// that serves Fetch replies as raw frames and receives Put payloads straight
// into staging pages. Each connection has its own
// thread, which blocks in read and writev (it is not a gRPC reactor); sends
// come straight from pinned arena pages. Requests are validated and pinned by
// PlanFetch, the same code as the gRPC Fetch. A connection that sends garbage
// is closed; a stalled reader is cut off by a send timeout, releasing pins.
// Puts are admitted and committed by the same code as the gRPC Put stream.
//
// Thread safety: Start and Shutdown from one thread; serving is internal.
#ifndef KVCACHE_KVSTORE_DATA_PORT_SERVER_H_
#define KVCACHE_KVSTORE_DATA_PORT_SERVER_H_

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "absl/time/time.h"
#include "kvstore/service_context.h"

namespace kvcache {

class DataPortServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";  // an IPv4 or IPv6 literal, or "localhost"
    int port = 0;                    // 0: any free port
    int max_connections = 64;
    absl::Duration send_timeout = absl::Seconds(30);
    absl::Duration idle_timeout = absl::Minutes(5);
  };

  // UNAVAILABLE if the port cannot be bound. `service` is not owned and must
  // outlive the server.
  static absl::StatusOr<std::unique_ptr<DataPortServer>> Start(ServiceContext& service,
                                                               const Options& options);
  // Shuts down if still running.
  ~DataPortServer();

  int port() const { return port_; }
  // Stops accepting, cuts every connection and joins their threads.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  DataPortServer(ServiceContext& service, const Options& options, int listen_fd, int port)
      : service_(service), options_(options), listen_fd_(listen_fd), port_(port) {}
  void AcceptLoop() ABSL_LOCKS_EXCLUDED(mu_);
  void Serve(int fd);
  // Serves one request; false when the connection must close.
  bool ServeOne(int fd);
  bool ServeFetch(int fd, uint32_t body_length);
  bool ServePut(int fd, uint32_t header_length);
  void ReapFinished() ABSL_LOCKS_EXCLUDED(mu_);

  ServiceContext& service_;
  const Options options_;
  const int listen_fd_;
  const int port_;
  std::thread acceptor_;
  Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, std::pair<std::thread, int>> connections_ ABSL_GUARDED_BY(mu_);  // id -> thread, fd
  std::vector<int> finished_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_DATA_PORT_SERVER_H_
