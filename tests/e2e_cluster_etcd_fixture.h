// The fixture of the cluster tests that follow a real etcd: three real
// kvstored nodes registered there, and a ClusterClient that follows the
// member list (e2e_cluster_etcd_test.cc, e2e_cluster_repair_test.cc).
#ifndef KVCACHE_TESTS_E2E_CLUSTER_ETCD_FIXTURE_H_
#define KVCACHE_TESTS_E2E_CLUSTER_ETCD_FIXTURE_H_

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

inline constexpr size_t kBlock = 16 << 10;
inline constexpr size_t kChainBlocks = 8;

inline const std::string& Ns() {
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

}  // namespace kvcache

#endif  // KVCACHE_TESTS_E2E_CLUSTER_ETCD_FIXTURE_H_
