// Real kvstored nodes in a real etcd that keep two copies of each block and
// repair them: a death restores the lost copies, a join warms the new node,
// every tenant's blocks are repaired in that tenant, and blocks only on NVMe
// are copied from the disk.
#include "tests/e2e_cluster_etcd_fixture.h"

namespace kvcache {
namespace {

// Nodes that keep two copies of each block, and repair them.
class E2eClusterRepairTest : public E2eClusterEtcdTest {
 protected:
  E2eClusterRepairTest() {
    node_replicas_ = 2;
    // Pages of a block's size: two survivors then hold all 320 blocks with
    // room to spare (with 256 KiB pages the 64 MiB arena holds 256).
    extra_node_flags_ = {"--page_size=16KiB"};
  }

  v1::StatsResponse StatsOf(int node) {
    auto stub = v1::KvCache::NewStub(
        grpc::CreateChannel(daemons_[node]->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    v1::StatsResponse stats;
    if (!stub->Stats(&ctx, {}, &stats).ok()) stats.set_repair("no stats");
    return stats;
  }

  std::string RepairOf(int node) { return StatsOf(node).repair(); }

  // The node's blocks in `tier`.
  uint64_t BlocksIn(int node, v1::Tier tier) {
    const v1::StatsResponse stats = StatsOf(node);
    for (const v1::TierStats& t : stats.tiers()) {
      if (t.tier() == tier) return t.blocks();
    }
    return 0;
  }

  // Puts every chain through a client that keeps two copies of each block,
  // its first block included (as repair keeps them: see replica_repairer.h).
  std::unique_ptr<ClusterClient> PutAllTwice() {
    ClusterOptions options = EtcdClusterOptions();
    options.replicas = 2;
    options.root_replicas = 2;
    auto twice = ClusterClient::Create(options);
    EXPECT_TRUE(twice.ok()) << twice.status();
    if (!twice.ok()) return nullptr;
    for (const auto& chain : chains_) {
      for (v1::PutOutcome o : (*twice)->Put(Ns(), BlockKey(), TestPayloads(chain, kBlock))) {
        EXPECT_EQ(o, v1::PUT_STORED);
      }
    }
    return std::move(*twice);
  }

  // Whether the node holds the key in `tenant` ("": the default one).
  bool HeldBy(const std::string& address, const BlockKey& key, const std::string& tenant = "") {
    std::unique_ptr<Client>& client = node_clients_[tenant + "@" + address];
    if (client == nullptr) {
      ClientOptions options = TestClientOptions(address);
      options.security.act_for_tenant = tenant;
      client = std::move(*Client::Create(options));
    }
    return client->Lookup(Ns(), {key}).hits == 1;
  }

  // Whether every block of `chains` (the test's when null) sits on each of
  // its `copies` highest-ranked members (as the cluster's clients find it
  // now), in `tenant`.
  bool EveryBlockOnItsReplicas(size_t copies,
                               const std::vector<std::vector<BlockKey>>* chains = nullptr,
                               const std::string& tenant = "") {
    const std::set<std::string> now = Members();
    const std::vector<std::string> members(now.begin(), now.end());
    const Rendezvous placement(members);
    for (const auto& chain : chains != nullptr ? *chains : chains_) {
      for (const BlockKey& key : chain) {
        for (size_t n : placement.Ranked(key, copies)) {
          if (!HeldBy(placement.node(n), key, tenant)) return false;
        }
      }
    }
    return true;
  }

  bool Eventually(const std::function<bool()>& done, absl::Duration limit) {
    const absl::Time give_up = absl::Now() + limit;
    while (!done()) {
      if (absl::Now() > give_up) return false;
      absl::SleepFor(absl::Milliseconds(200));
    }
    return true;
  }
};

// A node dies: the survivors copy the blocks that lost their second copy,
// so a second death loses nothing more. A node joins: it is sent the blocks
// it now ranks for, and reads that go to it first hit.
TEST_F(E2eClusterRepairTest, LostCopiesAreRestoredAndANewNodeWarmsUp) {
  std::unique_ptr<ClusterClient> twice = PutAllTwice();
  ASSERT_NE(twice, nullptr);
  ASSERT_TRUE(EveryBlockOnItsReplicas(2));

  daemons_[1]->Kill();
  ASSERT_TRUE(AwaitMembers(2, absl::Seconds(8)));
  const absl::Time died = absl::Now();
  EXPECT_TRUE(Eventually([&] { return EveryBlockOnItsReplicas(2); }, absl::Seconds(30)))
      << "the survivors did not restore every second copy: " << RepairOf(0) << " | "
      << RepairOf(2);
  std::cout << "repair after a death: every block on both survivors "
            << absl::FormatDuration(absl::Now() - died) << " after etcd dropped the node\n";
  auto stub = v1::KvCache::NewStub(
      grpc::CreateChannel(daemons_[0]->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::StatsResponse stats;
  ASSERT_TRUE(stub->Stats(&ctx, {}, &stats).ok());
  EXPECT_NE(stats.repair().find("passes"), std::string::npos) << stats.repair();

  // A new node joins and is sent what it now ranks for.
  ASSERT_NO_FATAL_FAILURE(StartNode());
  ASSERT_TRUE(AwaitMembers(3));
  EXPECT_TRUE(Eventually([&] { return EveryBlockOnItsReplicas(2); }, absl::Seconds(30)))
      << "the new node was not warmed up";
  ASSERT_TRUE(AwaitAllUp());
  EXPECT_EQ(WholeChainsFetched(twice.get()), chains_.size());
  EXPECT_EQ(wrong_, 0u);
}

// Repair copies every tenant's blocks, each into its own tenant: an admin
// client (every caller, with authentication off) acting for tenant alpha
// stores chains there; after a death the survivors hold alpha's second
// copies in alpha, byte-exact, and none of them in the default tenant.
TEST_F(E2eClusterRepairTest, EachTenantsBlocksAreRepairedInThatTenant) {
  std::unique_ptr<ClusterClient> twice = PutAllTwice();
  ASSERT_NE(twice, nullptr);
  ClusterOptions options = EtcdClusterOptions();
  options.replicas = 2;
  options.root_replicas = 2;
  options.node.security.act_for_tenant = "alpha";
  absl::StatusOr<std::unique_ptr<ClusterClient>> alpha = ClusterClient::Create(options);
  ASSERT_TRUE(alpha.ok()) << alpha.status();
  std::vector<std::vector<BlockKey>> alpha_chains;
  for (uint32_t seed = 0; seed < 8; ++seed) {
    alpha_chains.push_back(TestChain(70000 + seed, kChainBlocks));
    for (v1::PutOutcome o :
         (*alpha)->Put(Ns(), BlockKey(), TestPayloads(alpha_chains.back(), kBlock))) {
      ASSERT_EQ(o, v1::PUT_STORED);
    }
  }
  ASSERT_TRUE(EveryBlockOnItsReplicas(2, &alpha_chains, "alpha"));

  daemons_[1]->Kill();
  ASSERT_TRUE(AwaitMembers(2, absl::Seconds(8)));
  EXPECT_TRUE(Eventually(
      [&] {
        return EveryBlockOnItsReplicas(2) && EveryBlockOnItsReplicas(2, &alpha_chains, "alpha");
      },
      absl::Seconds(30)))
      << "the survivors did not restore every tenant's second copies: " << RepairOf(0) << " | "
      << RepairOf(2);
  // Alpha's keys are alpha's alone, on every survivor.
  for (int node : {0, 2}) {
    for (const auto& chain : alpha_chains) {
      for (const BlockKey& key : chain) {
        EXPECT_FALSE(HeldBy(daemons_[node]->address(), key)) << "in the default tenant";
      }
    }
  }
  for (const auto& chain : alpha_chains) {
    FetchResult got = FetchChecked(**alpha, Ns(), chain, kBlock, &wrong_);
    EXPECT_EQ(got.blocks, chain.size()) << got.status;
  }
  EXPECT_EQ(WholeChainsFetched(twice.get()), chains_.size());
  EXPECT_EQ(wrong_, 0u);
}

// Nodes whose host tier holds a fraction of what they keep (2 MiB of host
// pages over an NVMe tier each): when a node dies, most blocks the
// survivors must copy live only on their NVMe. Repair reads them from the
// disk, without promoting them into host pages or counting hits.
class E2eClusterRepairNvmeTest : public E2eClusterRepairTest {
 protected:
  E2eClusterRepairNvmeTest() {
    nvme_tiers_ = true;
    extra_node_flags_.insert(extra_node_flags_.end(),
                             {"--host_capacity=2MiB", "--spill_high=0.5", "--spill_low=0.25",
                              "--nvme_capacity=64MiB"});
  }
};

TEST_F(E2eClusterRepairNvmeTest, BlocksOnlyOnNvmeAreCopiedFromTheDisk) {
  std::unique_ptr<ClusterClient> twice = PutAllTwice();
  ASSERT_NE(twice, nullptr);
  ASSERT_TRUE(EveryBlockOnItsReplicas(2));
  // About 213 blocks a node, at most 128 host pages: most are on NVMe only.
  uint64_t promoted_before = 0;
  for (int n : {0, 2}) {
    const uint64_t host = BlocksIn(n, v1::TIER_HOST), nvme = BlocksIn(n, v1::TIER_NVME);
    EXPECT_LT(host, 130u) << "node " << n;
    EXPECT_GT(nvme, 100u) << "node " << n;
    promoted_before += StatsOf(n).promoted_blocks();
  }

  daemons_[1]->Kill();
  ASSERT_TRUE(AwaitMembers(2, absl::Seconds(8)));
  EXPECT_TRUE(Eventually([&] { return EveryBlockOnItsReplicas(2); }, absl::Seconds(30)))
      << "the survivors did not restore every second copy: " << RepairOf(0) << " | "
      << RepairOf(2);
  uint64_t promoted_after = 0;
  for (int n : {0, 2}) promoted_after += StatsOf(n).promoted_blocks();
  EXPECT_EQ(promoted_after, promoted_before) << "repair promoted blocks it only copied";
  // Every chain reads back whole and byte-exact from the two survivors.
  EXPECT_EQ(WholeChainsFetched(twice.get()), chains_.size());
  EXPECT_EQ(wrong_, 0u);
}

}  // namespace
}  // namespace kvcache
