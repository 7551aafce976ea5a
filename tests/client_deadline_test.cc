// A daemon that accepts connections but never answers costs the worker no
// more than the deadline: every call comes back as a counted miss.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/test_blocks.h"

namespace kvcache {
namespace {

TEST(ClientDeadlineTest, SilentServerIsAMissWithinTheDeadline) {
  // A listener that accepts and then says nothing (not even HTTP/2 settings).
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 16), 0);
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::vector<int> accepted;
  std::thread acceptor([&] {
    while (true) {
      const int fd = accept(listener, nullptr, nullptr);
      if (fd < 0) return;
      accepted.push_back(fd);
    }
  });

  ClientOptions options;
  options.address = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  options.deadline = absl::Milliseconds(300);
  auto client = Client::Create(options);
  ASSERT_TRUE(client.ok());
  std::vector<BlockKey> chain = TestChain(1, 4);

  absl::Time start = absl::Now();
  LookupResult hit = (*client)->Lookup("ns", chain);
  EXPECT_EQ(hit.hits, 0u);
  EXPECT_EQ(hit.status.code(), absl::StatusCode::kDeadlineExceeded) << hit.status;
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));

  std::string buf(1000, '\0');
  FetchTarget t{chain[0], absl::MakeSpan(reinterpret_cast<uint8_t*>(buf.data()), buf.size())};
  start = absl::Now();
  FetchResult got = (*client)->Fetch("ns", {&t, 1});
  EXPECT_EQ(got.blocks, 0u);
  EXPECT_FALSE(got.status.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));

  start = absl::Now();
  auto put = (*client)->Put("ns", BlockKey(), TestPayloads({chain[0]}, 1000));
  EXPECT_FALSE(put.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));

  ClientCounters c = (*client)->counters();
  EXPECT_EQ(c.lookup_errors, 1u);
  EXPECT_EQ(c.fetch_errors, 1u);
  shutdown(listener, SHUT_RDWR);
  close(listener);
  acceptor.join();
  for (int fd : accepted) close(fd);
}

}  // namespace
}  // namespace kvcache
