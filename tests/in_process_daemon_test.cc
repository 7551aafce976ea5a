// The daemon started in this process (kvstore/daemon.h) and the client's
// three transports against it: every path stores, looks up and fetches the
// same bytes, the client's figures name the path that did it, and Stop
// closes every door. No binary, no port file: the parts as kvstored runs them.
#include "kvstore/daemon.h"

#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/test_blocks.h"

namespace kvcache {
namespace {

constexpr size_t kBlock = 100 << 10;

DaemonOptions SmallDaemon() {
  DaemonOptions options;
  options.store.arena.capacity_bytes = 64ull << 20;
  options.store.arena.page_bytes = 64 << 10;
  options.store.arena.prefault = false;
  options.limits.max_block_bytes = 4ull << 20;
  // /tmp, not the test's own directory: a socket path has room for 107 bytes.
  static int daemons = 0;
  options.local_socket = absl::StrCat("/tmp/kvcache_in_process_", getpid(), "_", daemons++, ".sock");
  options.local_staging_bytes = 8ull << 20;
  return options;
}

TEST(InProcessDaemonTest, EveryPathStoresLooksUpAndFetchesTheSameBytes) {
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(SmallDaemon());
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  EXPECT_NE((*daemon)->port(), 0);
  const std::string banner = (*daemon)->Banner();
  EXPECT_NE(banner.find((*daemon)->bound()), std::string::npos) << banner;
  EXPECT_NE(banner.find("direct reads: on"), std::string::npos) << banner;

  uint32_t seed = 100;
  for (const FetchPath& path : kFetchPaths) {
    SCOPED_TRACE(path.name);
    const ClientPath expected = path.local       ? ClientPath::kSameHost
                                : path.data_port ? ClientPath::kDataPort
                                                 : ClientPath::kGrpc;
    auto client = ClientThrough((*daemon)->bound(), path);
    ASSERT_TRUE(client.ok()) << client.status();
    const std::vector<BlockKey> chain = TestChain(seed++, 4);
    auto put = (*client)->Put("ns", BlockKey(), TestPayloads(chain, kBlock));
    ASSERT_TRUE(put.ok()) << put.status();
    EXPECT_EQ(*put, std::vector<v1::PutOutcome>(4, v1::PUT_STORED));

    uint64_t wrong = 0;
    const FetchResult fetched = FetchChecked(**client, "ns", chain, kBlock, &wrong);
    ASSERT_TRUE(fetched.status.ok()) << fetched.status;
    EXPECT_EQ(fetched.blocks, 4u);
    EXPECT_EQ(wrong, 0u);

    // The chain and one key more: the cached run, and the miss after it.
    std::vector<BlockKey> longer = chain;
    longer.push_back(TestChain(seed + 1000, 1)[0]);
    const LookupResult found = (*client)->Lookup("ns", longer);
    ASSERT_TRUE(found.status.ok()) << found.status;
    EXPECT_EQ(found.hits, 4u);
    EXPECT_EQ(found.sizes, std::vector<uint64_t>(4, kBlock));
    EXPECT_EQ(found.tiers, std::vector<v1::Tier>(4, v1::TIER_HOST));

    // Each call went over the path asked for, and no other.
    const ClientCounters c = (*client)->counters();
    EXPECT_EQ(c.local_path_fallbacks + c.data_port_fallbacks, 0u);
    for (ClientOp op : {ClientOp::kPut, ClientOp::kFetch, ClientOp::kLookup}) {
      SCOPED_TRACE(ClientOpName(op));
      EXPECT_EQ(c.figures.at(expected, op).requests, 1u);
      uint64_t elsewhere = 0;
      for (size_t p = 0; p < kClientPaths; ++p) {
        if (static_cast<ClientPath>(p) != expected) {
          elsewhere += c.figures.at(static_cast<ClientPath>(p), op).requests;
        }
      }
      EXPECT_EQ(elsewhere, 0u);
    }
    EXPECT_EQ(c.figures.at(expected, ClientOp::kFetch).blocks, 4u);
    EXPECT_EQ(c.figures.at(expected, ClientOp::kPut).bytes, 4 * kBlock);
  }
  // Each path's blocks are there for the others too.
  auto grpc_only = ClientThrough((*daemon)->bound(), kFetchPaths[2]);
  ASSERT_TRUE(grpc_only.ok());
  for (uint32_t s = 100; s < seed; ++s) {
    EXPECT_EQ((*grpc_only)->Lookup("ns", TestChain(s, 4)).hits, 4u) << s;
  }
}

TEST(InProcessDaemonTest, StopClosesEveryPathAndCallsBecomeMisses) {
  DaemonOptions options = SmallDaemon();
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string address = (*daemon)->bound();
  const std::vector<BlockKey> chain = TestChain(7, 2);
  {
    auto client = ClientThrough(address, kFetchPaths[0]);
    ASSERT_TRUE(client.ok());
    ASSERT_TRUE((*client)->Put("ns", BlockKey(), TestPayloads(chain, kBlock)).ok());
  }
  (*daemon)->Stop(absl::Seconds(1));
  (*daemon)->Stop(absl::Seconds(1));  // a second Stop does nothing
  EXPECT_NE(access(options.local_socket.c_str(), F_OK), 0) << "the socket file outlived Stop";
  for (const FetchPath& path : kFetchPaths) {
    SCOPED_TRACE(path.name);
    ClientOptions client_options = TestClientOptions(address);
    client_options.deadline = absl::Seconds(2);
    client_options.use_local_path = path.local;
    client_options.use_data_port = path.data_port;
    auto client = Client::Create(client_options);
    ASSERT_TRUE(client.ok());
    const LookupResult found = (*client)->Lookup("ns", chain);
    EXPECT_EQ(found.hits, 0u);
    EXPECT_FALSE(found.status.ok());
    uint64_t wrong = 0;
    EXPECT_EQ(FetchChecked(**client, "ns", chain, kBlock, &wrong).blocks, 0u);
  }
}

TEST(InProcessDaemonTest, OptionsThatDoNotFitAreRefusedBeforeAnythingStarts) {
  struct Case {
    const char* why;
    void (*change)(DaemonOptions&);
    const char* says;
  };
  const Case cases[] = {
      {"a remote address without TLS and tokens",
       [](DaemonOptions& o) { o.listen = "0.0.0.0:0"; }, "--insecure"},
      {"a connection share of 0", [](DaemonOptions& o) { o.connection_share = 0; },
       "--connection_share"},
      {"a tenant share above 1", [](DaemonOptions& o) { o.tenant_share = 1.5; },
       "--tenant_share"},
      {"local tenants without authentication",
       [](DaemonOptions& o) { o.auth.local_tenants = "self:a:read"; }, "--token_file"},
      {"staging smaller than the largest block",
       [](DaemonOptions& o) { o.local_staging_bytes = 1 << 20; }, "--local_staging"},
      {"uids that are not numbers", [](DaemonOptions& o) { o.local_allowed_uids = "root"; },
       "--local_allowed_uids"},
      {"a metrics address without a port", [](DaemonOptions& o) { o.metrics_listen = "x"; },
       "--metrics_listen"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.why);
    DaemonOptions options = SmallDaemon();
    c.change(options);
    absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(options);
    ASSERT_FALSE(daemon.ok());
    EXPECT_EQ(daemon.status().code(), absl::StatusCode::kInvalidArgument) << daemon.status();
    EXPECT_NE(daemon.status().message().find(c.says), std::string::npos) << daemon.status();
  }
}

}  // namespace
}  // namespace kvcache
