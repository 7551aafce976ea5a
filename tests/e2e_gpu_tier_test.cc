// The GPU tier end to end, against a real kvstored whose GPU tier lives in
// host memory (--gpu_in_host_memory), so every rule runs on machines
// without a GPU: puts land on the GPU tier, Lookup and Inspect say so,
// every fetch path copies such blocks down byte-exact, and pressure demotes
// the coldest to the host without losing any. Speed is kvbench gpu's job.
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/daemon_test.h"
#include "tests/test_blocks.h"

namespace kvcache {
namespace {

constexpr size_t kBlock = 128 << 10;  // two 64 KiB pages on either tier

const std::string& Ns() {
  static const std::string ns = TestSchema().NamespaceName();
  return ns;
}

class E2eGpuTierTest : public DaemonTest {
 protected:
  // An 8 MiB host tier under a 2 MiB GPU tier (16 blocks).
  void Start() {
    StartDaemon({"--host_capacity=8MiB", "--page_size=64KiB", "--gpu_in_host_memory",
                 "--gpu_capacity=2MiB", "--gpu_page_size=64KiB"});
    auto c = Client::Create(TestClientOptions(daemon_->address()));
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
  }

  void PutChain(const std::vector<BlockKey>& chain) {
    auto put = client_->Put(Ns(), BlockKey(), TestPayloads(chain, kBlock));
    ASSERT_TRUE(put.ok()) << put.status();
    for (v1::PutOutcome o : *put) EXPECT_EQ(o, v1::PUT_STORED);
  }

  v1::Tier LookupTier(const BlockKey& key) {
    grpc::ClientContext ctx;
    v1::LookupRequest req;
    req.set_namespace_(Ns());
    req.add_keys(key.ToBytes());
    v1::LookupResponse resp;
    EXPECT_TRUE(stub_->Lookup(&ctx, req, &resp).ok());
    return resp.blocks_size() == 1 ? resp.blocks(0).tier() : v1::TIER_UNSPECIFIED;
  }

  std::unique_ptr<Client> client_;
};

TEST_F(E2eGpuTierTest, PutsLandOnTheGpuTierAndEveryPathFetchesThem) {
  Start();
  const v1::TierStats gpu_before = Stats().tiers(0);
  ASSERT_EQ(gpu_before.tier(), v1::TIER_GPU);
  ASSERT_TRUE(gpu_before.enabled()) << gpu_before.detail();
  EXPECT_NE(gpu_before.detail().find("host memory"), std::string::npos);

  // One chain per fetch path, 4 blocks each: 12 blocks, 24 of 32 GPU pages.
  std::vector<std::vector<BlockKey>> chains;
  for (uint32_t seed = 0; seed < 3; ++seed) {
    chains.push_back(TestChain(3100 + seed, 4));
    PutChain(chains.back());
  }
  v1::StatsResponse s =
      AwaitStats(*stub_, [](const v1::StatsResponse& s) { return s.gpu_landed_blocks() == 12; });
  ASSERT_EQ(s.gpu_landed_blocks(), 12u);
  EXPECT_EQ(s.tiers(0).blocks(), 12u);
  EXPECT_EQ(s.tiers(0).used_bytes(), 12 * kBlock);
  EXPECT_EQ(s.tiers(1).blocks(), 0u);  // their host pages went
  EXPECT_EQ(LookupTier(chains[0][0]), v1::TIER_GPU);

  const auto& paths = kFetchPaths;
  for (int p = 0; p < 3; ++p) {
    auto client = ClientThrough(daemon_->address(), paths[p]);
    ASSERT_TRUE(client.ok());
    uint64_t wrong = 0;
    FetchResult got = FetchChecked(**client, Ns(), chains[p], kBlock, &wrong);
    ASSERT_EQ(got.blocks, 4u) << paths[p].name << ": " << got.status;
    EXPECT_EQ(wrong, 0u) << paths[p].name;
    EXPECT_EQ(got.tiers, std::vector<v1::Tier>(4, v1::TIER_GPU)) << paths[p].name;
    FetchResult again = FetchChecked(**client, Ns(), {chains[p][0]}, kBlock, &wrong);
    EXPECT_EQ(again.tiers, std::vector<v1::Tier>{v1::TIER_HOST}) << paths[p].name;  // kept
    EXPECT_EQ(wrong, 0u) << paths[p].name;
  }
  s = Stats();
  EXPECT_EQ(s.gpu_copied_to_host(), 12u);
  EXPECT_EQ(s.tiers(0).blocks(), 12u);  // the GPU copies stay too

  grpc::ClientContext ctx;
  v1::InspectRequest req;
  req.set_namespace_(Ns());
  req.set_key(chains[0][0].ToBytes());
  v1::InspectResponse resp;
  ASSERT_TRUE(stub_->Inspect(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.tiers_size(), 2);
  EXPECT_EQ(resp.tiers(0), v1::TIER_GPU);
  EXPECT_EQ(resp.tiers(1), v1::TIER_HOST);
}

TEST_F(E2eGpuTierTest, PressureDemotesTheColdestToTheHostAndLosesNothing) {
  Start();
  std::vector<std::vector<BlockKey>> chains;
  for (uint32_t seed = 0; seed < 4; ++seed) {  // 4 x 8 x 128 KiB = 4 MiB: twice the GPU tier
    chains.push_back(TestChain(4100 + seed, 8));
    PutChain(chains.back());
  }
  v1::StatsResponse s = AwaitStats(*stub_, [](const v1::StatsResponse& s) {
    return s.gpu_demoted_blocks() > 0 &&
           s.tiers(0).used_bytes() <= 0.9 * s.tiers(0).capacity_bytes();
  });
  EXPECT_GT(s.gpu_demoted_blocks(), 0u);
  EXPECT_LE(s.tiers(0).used_bytes(), 0.9 * s.tiers(0).capacity_bytes());
  EXPECT_EQ(s.evicted_blocks(), 0u);
  EXPECT_EQ(LookupTier(chains[0][0]), v1::TIER_HOST);  // the coldest went down
  for (const auto& chain : chains) {
    size_t got = 0;
    std::vector<std::string> bufs = FetchAll(*client_, Ns(), chain, kBlock, &got);
    ASSERT_EQ(got, chain.size());
    for (size_t i = 0; i < chain.size(); ++i) EXPECT_EQ(bufs[i], PayloadFor(chain[i], kBlock));
  }
}

}  // namespace
}  // namespace kvcache
