#include "kvstore/server/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// One HTTP/1.0 exchange; the whole reply (the server closes after it).
std::string Exchange(int port, const std::string& request) {
  const int fd = Connect(port);
  if (fd < 0) return "";
  EXPECT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) reply.append(buf, n);
  close(fd);
  return reply;
}

TEST(MetricsServerTest, ServesMetricsAndRefusesEverythingElse) {
  std::atomic<int> renders{0};
  MetricsServer::Options options;
  options.port = 0;
  auto server = MetricsServer::Start(options, [&] {
    ++renders;
    return std::string("kvstored_up 1\n");
  });
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  ASSERT_GT(port, 0);

  std::string reply = Exchange(port, "GET /metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(reply.find(" 200 OK\r\n"), 8u) << reply;
  EXPECT_NE(reply.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << reply;
  EXPECT_NE(reply.find("\r\n\r\nkvstored_up 1\n"), std::string::npos) << reply;
  EXPECT_EQ(renders.load(), 1);  // rendered per scrape, not before

  reply = Exchange(port, "GET /other HTTP/1.0\r\n\r\n");
  EXPECT_EQ(reply.find(" 404 "), 8u) << reply;
  reply = Exchange(port, "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(reply.find(" 405 "), 8u) << reply;
  EXPECT_EQ(renders.load(), 1);

  server->reset();  // stops, and the port closes with it
  EXPECT_EQ(Connect(port), -1);
}

TEST(MetricsServerTest, SaysWhyItCannotListen) {
  MetricsServer::Options options;
  options.host = "not-an-ip";
  auto server = MetricsServer::Start(options, [] { return std::string(); });
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  options.host = "127.0.0.1";
  options.port = 0;
  auto first = MetricsServer::Start(options, [] { return std::string(); });
  ASSERT_TRUE(first.ok());
  options.port = (*first)->port();
  auto second = MetricsServer::Start(options, [] { return std::string(); });
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("Address already in use"), std::string::npos)
      << second.status();
}

}  // namespace
}  // namespace kvcache
