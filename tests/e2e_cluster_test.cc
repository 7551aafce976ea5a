// Three real kvstored nodes used as one tier through ClusterClient:
// placement and balance, byte-exact round trips, a node killed with -9
// (with one copy: misses within the deadline, no errors, failover; with two:
// every block still hits in the very next call), a hung node, and returns.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/cluster_client.h"
#include "gtest/gtest.h"
#include "tests/test_blocks.h"
#include "tools/daemon_process.h"

namespace kvcache {
namespace {

constexpr size_t kBlock = 64 << 10;
constexpr int kNodes = 3;

// Waits (up to 5 s) until every thread of `pid` is stopped: in this VM a
// SIGSTOP can take a few milliseconds to reach a thread that is running.
bool AllThreadsStopped(pid_t pid) {
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (absl::Now() < give_up) {
    bool all = true;
    for (const auto& task :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
      std::ifstream stat(task.path() / "stat");
      std::string line;
      std::getline(stat, line);
      const size_t paren = line.rfind(')');  // the state follows the command name
      if (paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'T') {
        all = false;
      }
    }
    if (all) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return false;
}

const std::string& Ns() {
  static const std::string ns = TestSchema().NamespaceName();
  return ns;
}

class E2eClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < kNodes; ++i) {
      auto d = DaemonProcess::Start("kvstore/kvstored", {"--host_capacity=64MiB"});
      ASSERT_TRUE(d.ok()) << d.status();
      peers_.push_back((*d)->address());
      daemons_.push_back(std::move(*d));
    }
    Connect(ClusterOptions().replicas);
  }

  // (Re)creates the cluster client, keeping `replicas` copies of each block.
  void Connect(int replicas) {
    ClusterOptions options;
    options.peers = peers_;
    options.node = TestClientOptions(peers_[0]);
    options.node.deadline = absl::Seconds(2);
    options.probe_interval = absl::Milliseconds(200);
    options.replicas = replicas;
    cluster_.reset();
    auto c = ClusterClient::Create(options);
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = std::move(*c);
  }

  // Waits (up to 10 s) for the prober to mark node n up.
  bool AwaitUp(int n) {
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!cluster_->nodes()[n].up && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    return cluster_->nodes()[n].up;
  }

  uint64_t BytesOut(int node) {
    auto stub =
        v1::KvCache::NewStub(grpc::CreateChannel(peers_[node], grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    v1::StatsResponse stats;
    EXPECT_TRUE(stub->Stats(&ctx, {}, &stats).ok());
    return stats.tiers(1).bytes_out();
  }

  uint64_t BlocksOn(int node) {
    auto stub =
        v1::KvCache::NewStub(grpc::CreateChannel(peers_[node], grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    v1::StatsResponse stats;
    EXPECT_TRUE(stub->Stats(&ctx, {}, &stats).ok());
    return stats.tiers(1).blocks();
  }

  // A 12-block chain whose second block lives on `node` (the first is on
  // every node), stored through the cluster.
  std::vector<BlockKey> StoredChainThrough(int node, uint32_t first_seed) {
    std::vector<BlockKey> chain;
    for (uint32_t seed = first_seed; chain.empty() || cluster_->OwnerOf(chain[1]) != peers_[node];
         ++seed) {
      chain = TestChain(seed, 12);
    }
    for (v1::PutOutcome o : cluster_->Put(Ns(), BlockKey(), TestPayloads(chain, kBlock))) {
      EXPECT_EQ(o, v1::PUT_STORED);
    }
    return chain;
  }

  // Fetches the chain's cached prefix; counts wrong blocks.
  size_t FetchChain(const std::vector<BlockKey>& chain, uint64_t* wrong) {
    FetchResult got = FetchChecked(*cluster_, Ns(), chain, kBlock, wrong);
    EXPECT_TRUE(got.status.ok()) << got.status;
    return got.blocks;
  }

  std::vector<std::string> peers_;
  std::vector<std::unique_ptr<DaemonProcess>> daemons_;
  std::unique_ptr<ClusterClient> cluster_;
};

// One copy of each block: balance, and what a node's death costs then.
TEST_F(E2eClusterTest, SpreadsChainsOverNodesAndSurvivesANodeDying) {
  Connect(1);
  std::vector<std::vector<BlockKey>> chains;
  for (uint32_t seed = 0; seed < 30; ++seed) {
    chains.push_back(TestChain(20000 + seed, 8));
    std::vector<v1::PutOutcome> put =
        cluster_->Put(Ns(), BlockKey(), TestPayloads(chains.back(), kBlock));
    for (v1::PutOutcome o : put) ASSERT_EQ(o, v1::PUT_STORED);
  }
  // Each block is on its own node (210 over 3 nodes), and each chain's first
  // block on all three (90).
  uint64_t total = 0;
  for (int n = 0; n < kNodes; ++n) {
    const uint64_t blocks = BlocksOn(n);
    EXPECT_GT(blocks, 75u) << "node " << n;
    EXPECT_LT(blocks, 125u) << "node " << n;
    total += blocks;
  }
  EXPECT_EQ(total, 300u);
  uint64_t wrong = 0;
  for (const auto& chain : chains) {
    EXPECT_EQ(cluster_->Lookup(Ns(), chain).hits, 8u);
    EXPECT_EQ(FetchChain(chain, &wrong), 8u);
  }

  // Node 1 dies. Its blocks become misses, within the deadline, and nothing
  // but misses reaches the caller.
  daemons_[1]->Kill();
  const absl::Time start = absl::Now();
  size_t hits_after = 0;
  for (const auto& chain : chains) {
    LookupResult hit = cluster_->Lookup(Ns(), chain);
    EXPECT_TRUE(hit.status.ok()) << hit.status;
    hits_after += hit.hits;
    for (size_t i = 1; i < hit.hits; ++i) EXPECT_NE(cluster_->OwnerOf(chain[i]), peers_[1]);
    // At least what the lookup found (the first lookup after the kill may
    // have asked node 1 for the first block, which the fetch then gets from
    // another replica).
    EXPECT_GE(FetchChain(chain, &wrong), hit.hits);
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));  // 30 lookups and fetches, no hang
  EXPECT_LT(hits_after, 240u);
  EXPECT_FALSE(cluster_->nodes()[1].up);
  // New puts fail over to the living nodes and are served from there.
  std::vector<BlockKey> fresh = TestChain(29999, 8);
  for (v1::PutOutcome o : cluster_->Put(Ns(), BlockKey(), TestPayloads(fresh, kBlock))) {
    EXPECT_EQ(o, v1::PUT_STORED);
  }
  EXPECT_EQ(cluster_->Lookup(Ns(), fresh).hits, 8u);
  EXPECT_EQ(FetchChain(fresh, &wrong), 8u);

  // It comes back (empty, on the same address): a probe finds it, and its
  // keys are its own again; re-put, they hit.
  auto back =
      DaemonProcess::Start("kvstore/kvstored", {"--host_capacity=64MiB", "--listen=" + peers_[1]});
  ASSERT_TRUE(back.ok()) << back.status();
  daemons_[1] = std::move(*back);
  EXPECT_TRUE(AwaitUp(1));
  for (v1::PutOutcome o : cluster_->Put(Ns(), BlockKey(), TestPayloads(chains[0], kBlock))) {
    EXPECT_TRUE(o == v1::PUT_STORED || o == v1::PUT_ALREADY_CACHED);
  }
  EXPECT_EQ(cluster_->Lookup(Ns(), chains[0]).hits, 8u);
  EXPECT_EQ(FetchChain(chains[0], &wrong), 8u);
  EXPECT_EQ(wrong, 0u);
}

TEST_F(E2eClusterTest, OneBlockFetchesOfTheFirstBlockSpreadOverItsReplicas) {
  // A prompt whose cached prefix is only its first block (the system prompt)
  // fetches just that block. Those fetches go round the replicas: every node
  // serves some, none serves most.
  std::vector<BlockKey> chain = TestChain(32000, 4);
  const std::vector<v1::PutOutcome> put =
      cluster_->Put(Ns(), BlockKey(), TestPayloads(chain, kBlock));
  for (size_t i = 0; i < put.size(); ++i) {
    ASSERT_EQ(put[i], v1::PUT_STORED) << "block " << i << " on " << cluster_->OwnerOf(chain[i]);
  }
  std::vector<uint64_t> before;
  for (int n = 0; n < kNodes; ++n) before.push_back(BytesOut(n));
  uint64_t wrong = 0;
  for (int i = 0; i < 30; ++i) {
    FetchResult got = FetchChecked(*cluster_, Ns(), {chain[0]}, kBlock, &wrong);
    ASSERT_EQ(got.blocks, 1u) << got.status;
  }
  // Same-host direct reads reach a node's Stats when the client reports
  // them, a few milliseconds later: wait until all 30 are counted.
  std::vector<uint64_t> served(kNodes);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (uint64_t total = 0; total < 30 && std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    total = 0;
    for (int n = 0; n < kNodes; ++n) total += served[n] = (BytesOut(n) - before[n]) / kBlock;
  }
  for (int n = 0; n < kNodes; ++n) {
    EXPECT_GE(served[n], 5u) << "node " << n;
    EXPECT_LE(served[n], 15u) << "node " << n;
  }
  EXPECT_EQ(wrong, 0u);
}

TEST_F(E2eClusterTest, AHungNodeCostsOneDeadlineThenMissesUntilItAnswers) {
  Connect(1);
  const std::vector<BlockKey> chain = StoredChainThrough(2, 31000);
  // Node 2 stops answering but keeps its connections: only the deadline
  // (2 s) ends a call to it.
  ASSERT_EQ(kill(daemons_[2]->pid(), SIGSTOP), 0);
  ASSERT_TRUE(AllThreadsStopped(daemons_[2]->pid()));
  const absl::Time start = absl::Now();
  LookupResult hit = cluster_->Lookup(Ns(), chain);
  const absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(hit.status.ok()) << hit.status;
  EXPECT_LT(took, absl::Seconds(4));
  EXPECT_FALSE(cluster_->nodes()[2].up);
  EXPECT_LE(hit.hits, 1u);
  // Marked down: the next calls do not wait on it at all.
  const absl::Time again = absl::Now();
  cluster_->Lookup(Ns(), chain);
  EXPECT_LT(absl::Now() - again, absl::Milliseconds(150) + absl::Seconds(2));
  ASSERT_EQ(kill(daemons_[2]->pid(), SIGCONT), 0);
  EXPECT_TRUE(AwaitUp(2));                             // the prober reaches it
  EXPECT_EQ(cluster_->Lookup(Ns(), chain).hits, 12u);  // it kept its blocks
}

// The default, two copies of each block: a node killed with -9 costs its
// blocks nothing. The very next lookup and fetch find every chain whole,
// byte-exact, asking the dead node's blocks of their other replica within
// the same call.
TEST_F(E2eClusterTest, WithTwoReplicasAKilledNodeCostsNoBlock) {
  ASSERT_EQ(ClusterOptions().replicas, 2);
  std::vector<std::vector<BlockKey>> chains;
  for (uint32_t seed = 0; seed < 10; ++seed) chains.push_back(TestChain(40000 + seed, 20));
  for (const auto& chain : chains) {
    for (v1::PutOutcome o : cluster_->Put(Ns(), BlockKey(), TestPayloads(chain, kBlock))) {
      ASSERT_EQ(o, v1::PUT_STORED);
    }
  }
  // Two copies of every block but the first (on every node): 10 + 2 * 190.
  uint64_t total = 0;
  for (int n = 0; n < kNodes; ++n) total += BlocksOn(n);
  EXPECT_EQ(total, 10u * kNodes + 2 * 190u);
  // A node that owns blocks of every chain dies without a word.
  daemons_[1]->Kill();
  uint64_t wrong = 0;
  const absl::Time start = absl::Now();
  for (const auto& chain : chains) {
    EXPECT_EQ(cluster_->Lookup(Ns(), chain).hits, 20u);
    EXPECT_EQ(FetchChain(chain, &wrong), 20u);
  }
  EXPECT_EQ(wrong, 0u);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_FALSE(cluster_->nodes()[1].up);
  // New chains go to the survivors' replicas and read back whole.
  std::vector<BlockKey> fresh = TestChain(41000, 20);
  for (v1::PutOutcome o : cluster_->Put(Ns(), BlockKey(), TestPayloads(fresh, kBlock))) {
    EXPECT_EQ(o, v1::PUT_STORED);
  }
  EXPECT_EQ(FetchChain(fresh, &wrong), 20u);
  EXPECT_EQ(wrong, 0u);
}

// A node one client saw fail is down for every ClusterClient of the process
// at once: the others never spend a call on it, and all see it come back.
TEST_F(E2eClusterTest, ANodeSeenDownByOneClientIsDownForAllOfThem) {
  ClusterOptions options;
  options.peers = peers_;
  options.node = TestClientOptions(peers_[0]);
  options.probe_interval = absl::Milliseconds(200);
  auto other = ClusterClient::Create(options);
  ASSERT_TRUE(other.ok()) << other.status();
  std::vector<BlockKey> chain = TestChain(43000, 20);
  for (v1::PutOutcome o : cluster_->Put(Ns(), BlockKey(), TestPayloads(chain, kBlock))) {
    ASSERT_EQ(o, v1::PUT_STORED);
  }
  const std::string victim = peers_[1];
  daemons_[1]->Kill();
  EXPECT_EQ(cluster_->Lookup(Ns(), chain).hits, 20u);  // fails over, marks it down
  EXPECT_FALSE(cluster_->nodes()[1].up);
  const uint64_t failures = (*other)->nodes()[1].failures;
  EXPECT_FALSE((*other)->nodes()[1].up);  // before it made any call
  EXPECT_EQ((*other)->Lookup(Ns(), chain).hits, 20u);
  EXPECT_EQ((*other)->nodes()[1].failures, failures);  // it never tried the dead node
  // Back on the same address (empty): both clients see it up again.
  auto back = DaemonProcess::Start("kvstore/kvstored",
                                   {"--host_capacity=64MiB", "--listen=" + victim});
  ASSERT_TRUE(back.ok()) << back.status();
  daemons_[1] = std::move(*back);
  EXPECT_TRUE(AwaitUp(1));
  EXPECT_TRUE((*other)->nodes()[1].up);
}

// With two copies a hung node costs one deadline, inside which its blocks
// are asked of their other replica: the call answers the whole chain.
TEST_F(E2eClusterTest, WithTwoReplicasAHungNodeCostsOneDeadlineAndNoBlock) {
  const std::vector<BlockKey> chain = StoredChainThrough(2, 42000);
  ASSERT_EQ(kill(daemons_[2]->pid(), SIGSTOP), 0);
  ASSERT_TRUE(AllThreadsStopped(daemons_[2]->pid()));
  const absl::Time start = absl::Now();
  LookupResult hit = cluster_->Lookup(Ns(), chain);
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  EXPECT_TRUE(hit.status.ok()) << hit.status;
  EXPECT_EQ(hit.hits, 12u);
  EXPECT_FALSE(cluster_->nodes()[2].up);
  uint64_t wrong = 0;
  EXPECT_EQ(FetchChain(chain, &wrong), 12u);  // no deadline now: node 2 is down
  EXPECT_EQ(wrong, 0u);
  ASSERT_EQ(kill(daemons_[2]->pid(), SIGCONT), 0);
  EXPECT_TRUE(AwaitUp(2));
}

}  // namespace
// A chain's first block belongs on every node, but a node that joined (or
// evicted it) lacks it until the chain is put from its start again. The
// replica a lookup picks for it may be that node: the block is asked of the
// next root replica in the same call, so the chain still hits whole. The
// same chain in three namespaces, each missing its root on another node,
// makes one of them miss it on the replica the chain picks.
TEST_F(E2eClusterTest, AFirstBlockMissingOnItsPickedReplicaIsReadFromAnother) {
  const std::vector<BlockKey> chain = TestChain(43000, 12);
  std::vector<PutBlock> blocks = TestPayloads(chain, kBlock);
  const std::vector<PutBlock> rest(blocks.begin() + 1, blocks.end());
  for (int without = 0; without < kNodes; ++without) {
    const std::string ns = absl::StrCat(Ns(), "-root-not-on-", without);
    for (v1::PutOutcome o : cluster_->Put(ns, chain[0], rest)) ASSERT_EQ(o, v1::PUT_STORED);
    for (int n = 0; n < kNodes; ++n) {
      if (n == without) continue;
      auto node = Client::Create(TestClientOptions(peers_[n]));
      ASSERT_TRUE(node.ok()) << node.status();
      PutBlock root = blocks[0];
      root.root = true;
      auto put = (*node)->Put(ns, BlockKey(), {root});
      ASSERT_TRUE(put.ok()) << put.status();
      ASSERT_EQ((*put)[0], v1::PUT_STORED);
    }
  }
  for (int without = 0; without < kNodes; ++without) {
    const std::string ns = absl::StrCat(Ns(), "-root-not-on-", without);
    EXPECT_EQ(cluster_->Lookup(ns, chain).hits, 12u) << "root not on node " << without;
    uint64_t wrong = 0;
    FetchResult got = FetchChecked(*cluster_, ns, chain, kBlock, &wrong);
    EXPECT_TRUE(got.status.ok()) << got.status;
    EXPECT_EQ(got.blocks, 12u) << "root not on node " << without;
    EXPECT_EQ(wrong, 0u);
  }
  // A chain whose first block no node holds costs one more ask, and misses.
  const std::vector<BlockKey> cold = TestChain(43100, 4);
  EXPECT_EQ(cluster_->Lookup(Ns(), cold).hits, 0u);
  for (const ClusterNodeState& node : cluster_->nodes()) EXPECT_TRUE(node.up);
}

}  // namespace kvcache
