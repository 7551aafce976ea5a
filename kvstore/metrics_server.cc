#include "kvstore/metrics_server.h"

#include <microhttpd.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/tcp_listen.h"

namespace kvcache {

struct MetricsRequests {
  static MHD_Result Reply(MHD_Connection* connection, unsigned int code, const std::string& body,
                          const char* content_type) {
    MHD_Response* response = MHD_create_response_from_buffer(
        body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    const MHD_Result queued = MHD_queue_response(connection, code, response);
    MHD_destroy_response(response);
    return queued;
  }

  // MHD_AccessHandlerCallback: called once per request header, then per
  // body piece; GET has no body, so the first call answers.
  static MHD_Result Answer(void* cls, MHD_Connection* connection, const char* url,
                           const char* method, const char*, const char*,
                           size_t* upload_data_size, void**) {
    const auto* server = static_cast<const MetricsServer*>(cls);
    if (*upload_data_size != 0) {  // a body we do not want: drop it
      *upload_data_size = 0;
      return MHD_YES;
    }
    constexpr const char* kText = "text/plain; charset=utf-8";
    if (std::strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        std::strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
      return Reply(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET /metrics\n", kText);
    }
    if (std::strcmp(url, "/metrics") != 0) {
      return Reply(connection, MHD_HTTP_NOT_FOUND, "kvstored serves /metrics only\n", kText);
    }
    return Reply(connection, MHD_HTTP_OK, server->render_(),
                 "text/plain; version=0.0.4; charset=utf-8");
  }
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const Options& options, std::function<std::string()> render) {
  absl::StatusOr<std::pair<int, int>> listening = ListenTcp(options.host, options.port);
  if (!listening.ok()) {
    return absl::Status(listening.status().code(),
                        absl::StrCat("metrics: ", listening.status().message()));
  }
  std::unique_ptr<MetricsServer> server(new MetricsServer(listening->second, std::move(render)));
  server->daemon_ = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, nullptr, nullptr,
      &MetricsRequests::Answer, server.get(), MHD_OPTION_LISTEN_SOCKET, listening->first,
      MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned int>(options.max_connections),
      MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned int>(options.idle_timeout_s),
      MHD_OPTION_END);
  if (server->daemon_ == nullptr) {
    close(listening->first);
    return absl::UnavailableError("metrics: the HTTP server (libmicrohttpd) did not start");
  }
  return server;
}

MetricsServer::~MetricsServer() {
  if (daemon_ != nullptr) MHD_stop_daemon(daemon_);  // closes the listening socket too
}

}  // namespace kvcache
