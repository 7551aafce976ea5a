// Under memory pressure the cache stays prefix-closed, and many clients
// working at once never read a wrong byte.
#include <thread>

#include "gtest/gtest.h"
#include "tools/daemon_process.h"
#include "tests/test_blocks.h"

namespace kvcache {
namespace {

const std::string& Ns() {
  static const std::string ns = TestSchema().NamespaceName();
  return ns;
}

bool IsCached(v1::KvCache::Stub& stub, const BlockKey& key) {
  grpc::ClientContext ctx;
  v1::InspectRequest req;
  req.set_namespace_(Ns());
  req.set_key(key.ToBytes());
  v1::InspectResponse resp;
  return stub.Inspect(&ctx, req, &resp).ok();
}

TEST(E2ePressureTest, CacheStaysPrefixClosedWhenFull) {
  auto daemon = DaemonProcess::Start("kvstore/kvstored", {"--host_capacity=8MiB", "--page_size=64KiB"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = Client::Create(TestClientOptions((*daemon)->address()));
  ASSERT_TRUE(client.ok());
  auto stub = v1::KvCache::NewStub(
      grpc::CreateChannel((*daemon)->address(), grpc::InsecureChannelCredentials()));
  // 6 chains x 16 blocks x 128 KiB = 12 MiB into an 8 MiB tier.
  std::vector<std::vector<BlockKey>> chains;
  for (uint32_t seed = 0; seed < 6; ++seed) {
    chains.push_back(TestChain(100 + seed, 16));
    auto outcomes = (*client)->Put(Ns(), BlockKey(), TestPayloads(chains.back(), 128 << 10));
    ASSERT_TRUE(outcomes.ok()) << outcomes.status();
  }
  size_t cached_total = 0;
  for (const auto& chain : chains) {
    LookupResult hit = (*client)->Lookup(Ns(), chain);
    ASSERT_TRUE(hit.status.ok());
    cached_total += hit.hits;
    // Nothing after the first miss is cached: no holes, no orphans.
    for (size_t i = hit.hits; i < chain.size(); ++i) {
      EXPECT_FALSE(IsCached(*stub, chain[i])) << "block " << i << " cached after a miss";
    }
    std::vector<std::string> bufs(hit.hits, std::string(128 << 10, '\0'));
    std::vector<FetchTarget> targets;
    for (size_t i = 0; i < hit.hits; ++i) {
      targets.push_back({chain[i], absl::MakeSpan(reinterpret_cast<uint8_t*>(bufs[i].data()),
                                                  bufs[i].size())});
    }
    FetchResult got = (*client)->Fetch(Ns(), targets);
    EXPECT_EQ(got.blocks, hit.hits);
    for (size_t i = 0; i < got.blocks; ++i) EXPECT_EQ(bufs[i], PayloadFor(chain[i], 128 << 10));
  }
  EXPECT_GT(cached_total, 40u);   // most of the 64 blocks that fit are kept
  EXPECT_LE(cached_total, 64u);   // 8 MiB / 128 KiB
  grpc::ClientContext ctx;
  v1::StatsResponse stats;
  ASSERT_TRUE(stub->Stats(&ctx, {}, &stats).ok());
  EXPECT_GT(stats.evicted_blocks(), 0u);
  EXPECT_LE(stats.tiers(1).used_bytes(), 8u << 20);
}

TEST(E2ePressureTest, EightConcurrentClientsNeverSeeAWrongByte) {
  auto daemon = DaemonProcess::Start("kvstore/kvstored", {"--host_capacity=6MiB", "--page_size=16KiB"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  constexpr size_t kBlock = 48 << 10;
  std::atomic<uint64_t> wrong{0}, verified{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 8; ++w) {
    workers.emplace_back([&, w] {
      auto client = Client::Create(TestClientOptions((*daemon)->address()));
      if (!client.ok()) return;
      for (int iter = 0; iter < 25; ++iter) {
        // 10 prompts shared by all workers, so they read each other's puts.
        std::vector<BlockKey> chain = TestChain(500 + (w * 7 + iter) % 10, 12);
        LookupResult hit = (*client)->Lookup(Ns(), chain);
        std::vector<std::string> bufs(hit.hits, std::string(kBlock, '\0'));
        std::vector<FetchTarget> targets;
        for (size_t i = 0; i < hit.hits; ++i) {
          targets.push_back({chain[i], absl::MakeSpan(reinterpret_cast<uint8_t*>(bufs[i].data()),
                                                      kBlock)});
        }
        FetchResult got = (*client)->Fetch(Ns(), targets);
        for (size_t i = 0; i < got.blocks; ++i) {
          (bufs[i] == PayloadFor(chain[i], kBlock) ? verified : wrong).fetch_add(1);
        }
        std::vector<BlockKey> missing(chain.begin() + got.blocks, chain.end());
        auto put = (*client)->Put(Ns(), got.blocks == 0 ? BlockKey() : chain[got.blocks - 1],
                                  TestPayloads(missing, kBlock));
        EXPECT_TRUE(put.ok()) << put.status();
      }
    });
  }
  for (auto& t : workers) t.join();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(verified.load(), 100u);
  EXPECT_EQ((*daemon)->Stop(), 0);
}

}  // namespace
}  // namespace kvcache
