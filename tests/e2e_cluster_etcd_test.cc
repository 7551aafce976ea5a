// Real kvstored nodes that register in a real etcd, and a ClusterClient that
// follows the member list there: a node joining or leaving moves only its
// share of keys, a node killed with -9 leaves when its lease runs out and
// comes back when it restarts, and an etcd outage changes nothing.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "client/cluster_client.h"
#include "membership/rendezvous.h"
#include "gtest/gtest.h"
#include "tests/test_blocks.h"
#include "tools/daemon_process.h"
#include "tools/etcd_process.h"

namespace kvcache {
namespace {

constexpr size_t kBlock = 16 << 10;
constexpr size_t kChainBlocks = 8;

const std::string& Ns() {
  static const std::string ns = TestSchema().NamespaceName();
  return ns;
}

class E2eClusterEtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto etcd = EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(*etcd);
    for (int i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(StartNode());
    ClusterOptions options = EtcdClusterOptions();
    // One copy of each block: these cases are about membership, and count
    // blocks by their one owner (tests/e2e_cluster_test.cc covers replicas).
    options.replicas = 1;
    auto c = ClusterClient::Create(options);
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = std::move(*c);
    ASSERT_TRUE(AwaitMembers(3));
    for (uint32_t seed = 0; seed < 40; ++seed)
      chains_.push_back(TestChain(50000 + seed, kChainBlocks));
  }

  // A cluster client that follows this test's etcd, with a 2 s deadline.
  ClusterOptions EtcdClusterOptions() const {
    ClusterOptions options;
    options.etcd = etcd_->endpoint();
    options.node = TestClientOptions("");
    options.node.deadline = absl::Seconds(2);
    options.probe_interval = absl::Milliseconds(200);
    return options;
  }

  // Copies the nodes keep of each block: 1, no repair, as the client here.
  int node_replicas_ = 1;
  std::vector<std::string> extra_node_flags_;
  // Gives each node an NVMe tier in a directory of its own.
  bool nvme_tiers_ = false;

  // Starts a node that registers in etcd (on `listen` when given).
  void StartNode(const std::string& listen = "") {
    std::vector<std::string> flags = {"--host_capacity=64MiB", "--etcd=" + etcd_->endpoint(),
                                      "--etcd_ttl_s=2",
                                      absl::StrCat("--cluster_replicas=", node_replicas_)};
    if (!listen.empty()) flags.push_back("--listen=" + listen);
    flags.insert(flags.end(), extra_node_flags_.begin(), extra_node_flags_.end());
    if (nvme_tiers_) {
      const char* tmp = std::getenv("TEST_TMPDIR");
      flags.push_back(absl::StrCat("--nvme_dir=", tmp ? tmp : "/tmp", "/nvme-node-",
                                   daemons_.size(), "-", getpid()));
    }
    auto d = DaemonProcess::Start("kvstore/kvstored", flags);
    ASSERT_TRUE(d.ok()) << d.status();
    daemons_.push_back(std::move(*d));
  }

  std::set<std::string> Members() const {
    std::set<std::string> out;
    for (const ClusterNodeState& n : cluster_->nodes()) out.insert(n.address);
    return out;
  }

  // Waits (up to `limit`) until the client sees `count` members.
  bool AwaitMembers(size_t count, absl::Duration limit = absl::Seconds(10)) {
    const absl::Time give_up = absl::Now() + limit;
    while (cluster_->nodes().size() != count && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return cluster_->nodes().size() == count;
  }

  bool AwaitAllUp(absl::Duration limit = absl::Seconds(10)) {
    const absl::Time give_up = absl::Now() + limit;
    while (absl::Now() < give_up) {
      bool all = true;
      for (const ClusterNodeState& n : cluster_->nodes()) all = all && n.up;
      if (all) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  void PutAll() {
    for (const auto& chain : chains_) {
      for (v1::PutOutcome o : cluster_->Put(Ns(), BlockKey(), TestPayloads(chain, kBlock))) {
        ASSERT_TRUE(o == v1::PUT_STORED || o == v1::PUT_ALREADY_CACHED) << o;
      }
    }
  }

  // Chains whose whole length is cached, fetched byte-exact through
  // `through` (the test's cluster client when null); wrong blocks count in
  // wrong_.
  size_t WholeChainsFetched(ClusterClient* through = nullptr) {
    size_t whole = 0;
    for (const auto& chain : chains_) {
      FetchResult got = FetchChecked(through ? *through : *cluster_, Ns(), chain, kBlock, &wrong_);
      EXPECT_TRUE(got.status.ok()) << got.status;
      if (got.blocks == chain.size()) ++whole;
    }
    return whole;
  }

  // Every chain block but the first (which every node holds a copy of).
  std::vector<BlockKey> OwnedKeys() const {
    std::vector<BlockKey> keys;
    for (const auto& chain : chains_) keys.insert(keys.end(), chain.begin() + 1, chain.end());
    return keys;
  }

  // The membership line of the node at `address`'s Stats.
  std::string ClusterLine(const std::string& address) {
    auto stub =
        v1::KvCache::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    v1::StatsResponse stats;
    EXPECT_TRUE(stub->Stats(&ctx, {}, &stats).ok());
    return stats.cluster();
  }

  // Whether a key is cached on the node that owns it now (where it is stored
  // as a root, so a one-key lookup there finds it).
  bool Cached(const BlockKey& key) {
    const std::string owner = cluster_->OwnerOf(key);
    std::unique_ptr<Client>& client = node_clients_[owner];
    if (client == nullptr) {
      auto c = Client::Create(TestClientOptions(owner));
      EXPECT_TRUE(c.ok()) << c.status();
      if (!c.ok()) return false;
      client = std::move(*c);
    }
    return client->Lookup(Ns(), {key}).hits == 1;
  }

  std::unique_ptr<EtcdProcess> etcd_;
  std::vector<std::unique_ptr<DaemonProcess>> daemons_;
  std::unique_ptr<ClusterClient> cluster_;
  std::vector<std::vector<BlockKey>> chains_;
  std::map<std::string, std::unique_ptr<Client>> node_clients_;  // for Cached()
  uint64_t wrong_ = 0;
};

TEST_F(E2eClusterEtcdTest, MembersComeFromEtcdAndBlocksGoToTheirOwners) {
  std::set<std::string> started;
  for (const auto& d : daemons_) started.insert(d->address());
  EXPECT_EQ(Members(), started);
  PutAll();
  EXPECT_EQ(WholeChainsFetched(), chains_.size());
  // Each block is on the node placement names, and nowhere else.
  std::map<std::string, uint64_t> expected;
  for (const BlockKey& k : OwnedKeys()) ++expected[cluster_->OwnerOf(k)];
  for (const auto& d : daemons_) {
    auto stub =
        v1::KvCache::NewStub(grpc::CreateChannel(d->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    v1::StatsResponse stats;
    ASSERT_TRUE(stub->Stats(&ctx, {}, &stats).ok());
    EXPECT_EQ(stats.tiers(1).blocks(), expected[d->address()] + chains_.size()) << d->address();
    // Stats says where it is registered.
    EXPECT_EQ(stats.cluster(), "/kvcache/nodes/" + d->address() + " in etcd at " +
                                   etcd_->endpoint() + ": registered");
  }
  EXPECT_EQ(wrong_, 0u);
}

TEST_F(E2eClusterEtcdTest, AJoinAndALeaveMoveOnlyTheirShare) {
  PutAll();
  const std::vector<BlockKey> keys = OwnedKeys();
  std::vector<std::string> before;
  for (const BlockKey& k : keys) before.push_back(cluster_->OwnerOf(k));

  // A fourth node joins: the client sees it, and only the keys it now owns
  // move (about 1/4); those are misses until put again, the rest still hit.
  ASSERT_NO_FATAL_FAILURE(StartNode());
  const std::string joined = daemons_.back()->address();
  ASSERT_TRUE(AwaitMembers(4, absl::Seconds(5)));
  size_t moved = 0, wrong_place = 0, hit_wrongly = 0, missed_wrongly = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string now = cluster_->OwnerOf(keys[i]);
    const bool did_move = now != before[i];
    moved += did_move;
    wrong_place += did_move && now != joined;
    const bool cached = Cached(keys[i]);
    hit_wrongly += did_move && cached;
    missed_wrongly += !did_move && !cached;
  }
  const double share = static_cast<double>(moved) / keys.size();
  std::cout << "join: " << moved << " of " << keys.size() << " keys moved (" << share * 100
            << "%)\n";
  EXPECT_GT(share, 0.15);
  EXPECT_LT(share, 0.35);
  EXPECT_EQ(wrong_place, 0u);  // only to the new node
  EXPECT_EQ(hit_wrongly, 0u);
  EXPECT_EQ(missed_wrongly, 0u);
  PutAll();  // workers re-put what missed
  EXPECT_EQ(WholeChainsFetched(), chains_.size());

  // It leaves cleanly (SIGTERM): its lease is revoked, so the client drops it
  // well within the 2 s TTL, and its keys go back to their old owners, which
  // still hold them.
  const absl::Time leave = absl::Now();
  ASSERT_EQ(kill(daemons_.back()->pid(), SIGTERM), 0);
  ASSERT_TRUE(AwaitMembers(3, absl::Seconds(5)));
  const absl::Duration took = absl::Now() - leave;
  std::cout << "leave: dropped from the member list after " << absl::FormatDuration(took) << "\n";
  EXPECT_LT(took, absl::Milliseconds(1500));
  EXPECT_EQ(daemons_.back()->Stop(), 0);
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(cluster_->OwnerOf(keys[i]), before[i]);
  EXPECT_EQ(WholeChainsFetched(), chains_.size());
  EXPECT_EQ(wrong_, 0u);
}

TEST_F(E2eClusterEtcdTest, AKilledNodeLeavesWithItsLeaseAndRejoinsOnRestart) {
  PutAll();
  const std::string victim = daemons_[1]->address();
  daemons_[1]->Kill();
  const absl::Time killed = absl::Now();
  // Misses at once, within the deadline, and no error.
  size_t whole = WholeChainsFetched();
  EXPECT_LT(whole, chains_.size());
  EXPECT_LT(absl::Now() - killed, absl::Seconds(10));
  // etcd drops it when its 2 s lease runs out.
  ASSERT_TRUE(AwaitMembers(2, absl::Seconds(8)));
  std::cout << "kill -9: dropped from the member list after "
            << absl::FormatDuration(absl::Now() - killed) << "\n";
  EXPECT_EQ(Members().count(victim), 0u);
  PutAll();  // the survivors take its keys
  EXPECT_EQ(WholeChainsFetched(), chains_.size());

  // It restarts on the same address (empty) and registers again.
  ASSERT_NO_FATAL_FAILURE(StartNode(victim));
  ASSERT_TRUE(AwaitMembers(3, absl::Seconds(5)));
  ASSERT_TRUE(AwaitAllUp());
  EXPECT_EQ(Members().count(victim), 1u);
  PutAll();
  EXPECT_EQ(WholeChainsFetched(), chains_.size());
  EXPECT_EQ(wrong_, 0u);
}

TEST_F(E2eClusterEtcdTest, AHungNodeCostsOneDeadlineLeavesWithItsLeaseAndComesBack) {
  PutAll();
  // A chain with blocks on node 2, which then stops answering (SIGSTOP): it
  // keeps its connections, so only the 2 s deadline ends a call to it.
  const std::string hung = daemons_[2]->address();
  size_t probe = 0;
  while (probe < chains_.size() && cluster_->OwnerOf(chains_[probe][1]) != hung) ++probe;
  ASSERT_LT(probe, chains_.size());
  ASSERT_EQ(kill(daemons_[2]->pid(), SIGSTOP), 0);
  absl::SleepFor(absl::Milliseconds(50));
  const absl::Time start = absl::Now();
  LookupResult hit = cluster_->Lookup(Ns(), chains_[probe]);
  const absl::Duration took = absl::Now() - start;
  std::cout << "hung node: lookup returned after " << absl::FormatDuration(took) << "\n";
  EXPECT_TRUE(hit.status.ok()) << hit.status;
  EXPECT_LE(hit.hits, 1u);
  EXPECT_LT(took, absl::Seconds(4));
  // It cannot renew its lease either, so etcd drops it within the TTL.
  ASSERT_TRUE(AwaitMembers(2, absl::Seconds(8)));
  EXPECT_EQ(Members().count(hung), 0u);
  // Resumed, it finds its lease gone, registers again, and it kept its blocks.
  ASSERT_EQ(kill(daemons_[2]->pid(), SIGCONT), 0);
  ASSERT_TRUE(AwaitMembers(3, absl::Seconds(8)));
  ASSERT_TRUE(AwaitAllUp());
  EXPECT_EQ(cluster_->Lookup(Ns(), chains_[probe]).hits, kChainBlocks);
  EXPECT_EQ(WholeChainsFetched(), chains_.size());
  EXPECT_EQ(wrong_, 0u);
}

TEST_F(E2eClusterEtcdTest, AnEtcdOutageChangesNothingAndNodesRegisterWhenItReturns) {
  PutAll();
  etcd_->Kill();
  // The last member list stays in force: every chain still hits.
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(cluster_->nodes().size(), 3u);
  EXPECT_EQ(WholeChainsFetched(), chains_.size());
  // A node started meanwhile serves, says it is not registered yet, and
  // registers once etcd is back.
  ASSERT_NO_FATAL_FAILURE(StartNode());
  EXPECT_NE(ClusterLine(daemons_.back()->address()).find(": not registered, retrying ("),
            std::string::npos)
      << ClusterLine(daemons_.back()->address());
  ASSERT_TRUE(etcd_->Restart().ok());
  ASSERT_TRUE(AwaitMembers(4, absl::Seconds(10)));
  EXPECT_EQ(Members().count(daemons_.back()->address()), 1u);
  EXPECT_NE(ClusterLine(daemons_.back()->address()).find(": registered"), std::string::npos)
      << ClusterLine(daemons_.back()->address());
  EXPECT_EQ(wrong_, 0u);
}

TEST_F(E2eClusterEtcdTest, BadMembershipOptionsAreClearErrors) {
  ClusterOptions both;
  both.peers = {daemons_[0]->address()};
  both.etcd = etcd_->endpoint();
  auto c = ClusterClient::Create(both);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << c.status();
  ClusterOptions unreachable;
  unreachable.etcd = "127.0.0.1:1";
  c = ClusterClient::Create(unreachable);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable) << c.status();
  EXPECT_NE(c.status().message().find("127.0.0.1:1"), std::string::npos) << c.status();
}

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
