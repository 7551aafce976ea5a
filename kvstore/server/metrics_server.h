// The daemon's /metrics endpoint: a small HTTP server (civetweb, from
// Debian: libc only, where libmicrohttpd would bring GnuTLS and 6 MiB of
// libraries into the GPU kit) that answers GET /metrics with what `render`
// returns now, in Prometheus' text format. Everything else is 404 (another
// path) or 405 (another method). A scrape renders the StatsResponse
// afresh, so it costs the serving paths nothing between scrapes.
//
// Thread safety: Start and the destructor from one thread; `render` is
// called on the server's threads, possibly several at once.
#ifndef KVCACHE_KVSTORE_SERVER_METRICS_SERVER_H_
#define KVCACHE_KVSTORE_SERVER_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct mg_context;

namespace kvcache {

class MetricsServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";  // an IP literal, without brackets
    int port = 9464;                 // 0: a free one
    int max_connections = 4;  // served at once, a thread each
    int idle_timeout_s = 10;
  };

  // Listens and serves. INVALID_ARGUMENT for a host that is not an IP
  // address, UNAVAILABLE if it cannot listen there or the HTTP server does
  // not start (the message says why).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const Options& options, std::function<std::string()> render);
  // Stops serving and closes the socket.
  ~MetricsServer();

  int port() const { return port_; }

 private:
  friend struct MetricsRequests;  // the HTTP callbacks (metrics_server.cc)
  MetricsServer(int port, std::function<std::string()> render)
      : port_(port), render_(std::move(render)) {}

  int port_;
  const std::function<std::string()> render_;
  mg_context* context_ = nullptr;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_METRICS_SERVER_H_
