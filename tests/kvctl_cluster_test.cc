// kvctl against a cluster of real kvstored nodes registered in a real etcd
// (--etcd) or named by hand (--peers): stats per node and in total, a merged
// ls, inspect of every copy, evict fanned out, health, and a node that is
// down named as such.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/kvctl_runner.h"
#include "tools/daemon_process.h"
#include "tools/etcd_process.h"

namespace kvcache {
namespace {

uint64_t Num(const nlohmann::json& v) {  // proto3 JSON writes uint64 as a string
  return v.is_string() ? std::stoull(v.get<std::string>()) : v.get<uint64_t>();
}

class KvctlClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto etcd = EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(*etcd);
    for (int i = 0; i < 3; ++i) {
      auto d = DaemonProcess::Start("kvstore/kvstored",
                                    {"--host_capacity=64MiB", "--etcd=" + etcd_->endpoint()});
      ASSERT_TRUE(d.ok()) << d.status();
      peers_ += (peers_.empty() ? "" : ",") + (*d)->address();
      daemons_.push_back(std::move(*d));
    }
    cluster_ = "--etcd=" + etcd_->endpoint() + " ";
    // 128 tokens, 16 per block: a chain of 8 blocks of 32 KiB.
    std::ofstream tokens(TmpPath("tokens.txt"));
    for (int i = 1; i <= 128; ++i) tokens << i << (i % 16 ? " " : "\n");
    tokens.close();
    std::string payload(256 << 10, '\0');
    for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 13 + i / 991);
    std::ofstream(TmpPath("payload.bin"), std::ios::binary) << payload;
    io_ = " --tokens=" + TmpPath("tokens.txt") + " --payload=" + TmpPath("payload.bin") +
          " --out=" + TmpPath("out.bin");
  }

  std::unique_ptr<EtcdProcess> etcd_;
  std::vector<std::unique_ptr<DaemonProcess>> daemons_;
  std::string peers_;
  std::string cluster_;
  std::string io_;
};

TEST_F(KvctlClusterTest, StatsLsInspectEvictAndHealthCoverEveryNode) {
  CliResult put = Kvctl(cluster_ + "put" + io_);
  ASSERT_EQ(put.exit_code, 0) << put.out;
  EXPECT_NE(put.out.find("8 stored"), std::string::npos) << put.out;
  CliResult get = Kvctl(cluster_ + "get" + io_);
  ASSERT_EQ(get.exit_code, 0) << get.out;
  EXPECT_NE(get.out.find("cached prefix: 8 of 8"), std::string::npos) << get.out;
  std::ifstream out(TmpPath("out.bin"), std::ios::binary);
  std::ifstream in(TmpPath("payload.bin"), std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(out), {}),
            std::string(std::istreambuf_iterator<char>(in), {}));

  // Stats: a row per node, and a total that is their sum: the chain's first
  // block on every node, and two copies of each of the other 7 (the
  // cluster's default --replicas=2).
  CliResult stats = Kvctl(cluster_ + "stats");
  ASSERT_EQ(stats.exit_code, 0) << stats.out;
  EXPECT_NE(stats.out.find("cluster: 3 nodes, 3 answering"), std::string::npos) << stats.out;
  for (const auto& d : daemons_) {
    EXPECT_NE(stats.out.find(d->address()), std::string::npos) << stats.out;
  }
  nlohmann::json js = nlohmann::json::parse(Kvctl(cluster_ + "--json stats").out);
  ASSERT_EQ(js["nodes"].size(), 3u);
  uint64_t sum = 0;
  for (const auto& n : js["nodes"]) sum += Num(n["stats"]["tiers"][1]["blocks"]);
  EXPECT_EQ(sum, 3u + 2 * 7);
  EXPECT_EQ(Num(js["total"]["tiers"][1]["blocks"]), 3u + 2 * 7);
  EXPECT_EQ(Num(js["total"]["tiers"][1]["capacityBytes"]), 3u * (64u << 20));

  // ls: one row per block (each is a root on its nodes), copies merged: the
  // first block held by 3 nodes, every other by 2.
  nlohmann::json ls = nlohmann::json::parse(Kvctl(cluster_ + "--json ls").out);
  ASSERT_EQ(ls["list"]["prefixes"].size(), 8u);
  int held_by_all = 0, held_by_two = 0;
  for (int holders : ls["nodes"]) {
    held_by_all += holders == 3;
    held_by_two += holders == 2;
  }
  EXPECT_EQ(held_by_all, 1);
  EXPECT_EQ(held_by_two, 7);
  const std::string ns = ls["list"]["prefixes"][0]["namespace"];
  CliResult table = Kvctl(cluster_ + "ls");
  EXPECT_NE(table.out.find("NODES"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("8 prefixes, 8 blocks, 256.0 KiB"), std::string::npos) << table.out;

  // inspect: every copy of the first block, naming its node.
  const std::string first_key = put.out.substr(put.out.find("first key ") + 10, 64);
  nlohmann::json copies =
      nlohmann::json::parse(Kvctl(cluster_ + "--json inspect --ns=" + ns + " " + first_key).out);
  EXPECT_EQ(copies["copies"].size(), 3u);
  CliResult missing = Kvctl(cluster_ + "inspect --ns=" + ns + " " + std::string(64, 'a'));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("not found on any of the 3 nodes"), std::string::npos) << missing.out;

  // evict one key: every copy goes; then the namespace, from every node.
  CliResult one = Kvctl(cluster_ + "evict --ns=" + ns + " " + first_key);
  ASSERT_EQ(one.exit_code, 0) << one.out;
  EXPECT_NE(one.out.find("evicted 3 blocks"), std::string::npos) << one.out;
  CliResult dry = Kvctl(cluster_ + "evict --ns=" + ns + " --dry-run");
  EXPECT_NE(dry.out.find("would evict 14 blocks"), std::string::npos) << dry.out;
  CliResult all = Kvctl(cluster_ + "evict --ns=" + ns);
  EXPECT_NE(all.out.find("evicted 14 blocks"), std::string::npos) << all.out;
  js = nlohmann::json::parse(Kvctl(cluster_ + "--json stats").out);
  EXPECT_EQ(Num(js["total"]["tiers"][1]["blocks"]), 0u);

  CliResult health = Kvctl(cluster_ + "health");
  EXPECT_EQ(health.exit_code, 0) << health.out;
  EXPECT_EQ(std::count(health.out.begin(), health.out.end(), '\n'), 3) << health.out;

  // One node's stats say where it is registered.
  CliResult one_node = Kvctl("--server=" + daemons_[0]->address() + " stats");
  EXPECT_NE(one_node.out.find("cluster: /kvcache/nodes/" + daemons_[0]->address() + " in etcd at " +
                              etcd_->endpoint() + ": registered"),
            std::string::npos)
      << one_node.out;

  // --peers names the same nodes by hand.
  CliResult by_hand = Kvctl("--peers=" + peers_ + " stats");
  EXPECT_EQ(by_hand.exit_code, 0) << by_hand.out;
  EXPECT_NE(by_hand.out.find("cluster: 3 nodes, 3 answering"), std::string::npos) << by_hand.out;
}

TEST_F(KvctlClusterTest, ADownNodeIsNamedAndTheRestStillAnswer) {
  ASSERT_EQ(Kvctl(cluster_ + "put" + io_).exit_code, 0);
  // Stopped hard, it is still in etcd until its lease runs out; --peers
  // names it either way.
  const std::string down = daemons_[1]->address();
  daemons_[1]->Kill();
  CliResult stats = Kvctl("--timeout_s=2 --peers=" + peers_ + " stats");
  EXPECT_EQ(stats.exit_code, 1) << stats.out;
  EXPECT_NE(stats.out.find("cluster: 3 nodes, 2 answering"), std::string::npos) << stats.out;
  EXPECT_NE(stats.out.find(down + "        DOWN"), std::string::npos) << stats.out;
  CliResult health = Kvctl("--timeout_s=2 --peers=" + peers_ + " health");
  EXPECT_EQ(health.exit_code, 1);
  EXPECT_NE(health.out.find("UNREACHABLE"), std::string::npos) << health.out;
  // get still works: the down node's blocks are misses, nothing worse.
  CliResult get = Kvctl("--timeout_s=2 --peers=" + peers_ + " get" + io_);
  EXPECT_EQ(get.exit_code, 0) << get.out;
}

TEST_F(KvctlClusterTest, BadClusterFlagsAreClearErrors) {
  CliResult both = Kvctl(cluster_ + "--peers=" + peers_ + " stats");
  EXPECT_EQ(both.exit_code, 1);
  EXPECT_NE(both.out.find("not both"), std::string::npos) << both.out;
  CliResult twice = Kvctl("--peers=127.0.0.1:1,127.0.0.1:1 stats");
  EXPECT_NE(twice.out.find("listed twice"), std::string::npos) << twice.out;
  CliResult empty = Kvctl(cluster_ + "--etcd_prefix=/nobody/ stats");
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_NE(empty.out.find("no kvstored registered under /nobody/"), std::string::npos)
      << empty.out;
  CliResult no_etcd = Kvctl("--timeout_s=1 --etcd=127.0.0.1:1 stats");
  EXPECT_EQ(no_etcd.exit_code, 1);
  EXPECT_NE(no_etcd.out.find("etcd Range at 127.0.0.1:1"), std::string::npos) << no_etcd.out;
}

}  // namespace
}  // namespace kvcache
