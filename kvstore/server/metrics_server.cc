#include "kvstore/server/metrics_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <unistd.h>

#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/tcp_listen.h"

namespace kvcache {

struct MetricsRequests {
  // civetweb's request handler: answers every request, returns the status.
  static int Answer(mg_connection* connection, void* cbdata) {
    const auto* server = static_cast<const MetricsServer*>(cbdata);
    const mg_request_info* request = mg_get_request_info(connection);
    const bool head = std::strcmp(request->request_method, "HEAD") == 0;
    if (!head && std::strcmp(request->request_method, "GET") != 0) {
      mg_send_http_error(connection, 405, "only GET /metrics\n");
      return 405;
    }
    if (request->local_uri == nullptr || std::strcmp(request->local_uri, "/metrics") != 0) {
      mg_send_http_error(connection, 404, "kvstored serves /metrics only\n");
      return 404;
    }
    const std::string body = server->render_();
    mg_send_http_ok(connection, "text/plain; version=0.0.4; charset=utf-8",
                    static_cast<long long>(body.size()));
    if (!head) mg_write(connection, body.data(), body.size());
    return 200;
  }
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const Options& options, std::function<std::string()> render) {
  in6_addr any;
  const bool v4 = inet_pton(AF_INET, options.host.c_str(), &any) == 1;
  if (!v4 && inet_pton(AF_INET6, options.host.c_str(), &any) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics: '", options.host, "' is not an IP address"));
  }
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });
  const std::string ports = v4 ? absl::StrCat(options.host, ":", options.port)
                               : absl::StrCat("[", options.host, "]:", options.port);
  const std::string threads = std::to_string(options.max_connections);
  const std::string timeout = std::to_string(options.idle_timeout_s * 1000);
  const char* config[] = {"listening_ports", ports.c_str(), "num_threads", threads.c_str(),
                          "request_timeout_ms", timeout.c_str(), "enable_keep_alive", "no",
                          nullptr};
  std::unique_ptr<MetricsServer> server(new MetricsServer(0, std::move(render)));
  mg_callbacks callbacks{};
  mg_init_data init_data{&callbacks, nullptr, config};
  unsigned code = 0;
  char text[256] = "";
  mg_error_data error{&code, text, sizeof(text)};
  server->context_ = mg_start2(&init_data, &error);
  if (server->context_ == nullptr) {
    // civetweb says only "Failed to setup server ports"; a bind of our own
    // says why (in use, not ours to bind).
    absl::StatusOr<std::pair<int, int>> probe = ListenTcp(options.host, options.port);
    if (probe.ok()) close(probe->first);
    return absl::UnavailableError(absl::StrCat(
        "metrics: ", probe.ok() ? absl::StrCat("cannot listen on ", ports, ": ", text)
                                : std::string(probe.status().message())));
  }
  mg_set_request_handler(server->context_, "/", &MetricsRequests::Answer, server.get());
  mg_server_port bound{};
  if (mg_get_server_ports(server->context_, 1, &bound) != 1 || bound.port <= 0) {
    return absl::UnavailableError(absl::StrCat("metrics: no port bound for ", ports));
  }
  server->port_ = bound.port;
  return server;
}

MetricsServer::~MetricsServer() {
  if (context_ != nullptr) mg_stop(context_);  // waits for its threads; closes the port
}

}  // namespace kvcache
