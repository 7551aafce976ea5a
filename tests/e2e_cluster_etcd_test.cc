// Real kvstored nodes that register in a real etcd, and a ClusterClient that
// follows the member list there: a node joining or leaving moves only its
// share of keys, a node killed with -9 leaves when its lease runs out and
// comes back when it restarts, and an etcd outage changes nothing.
#include "tests/e2e_cluster_etcd_fixture.h"

namespace kvcache {
namespace {

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

}  // namespace
}  // namespace kvcache
