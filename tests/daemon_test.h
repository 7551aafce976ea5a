// A test fixture around one real kvstored: start it with the test's flags,
// talk to it over gRPC, and check at the end that every test gave back what
// it pinned or staged.
#ifndef KVCACHE_TESTS_DAEMON_TEST_H_
#define KVCACHE_TESTS_DAEMON_TEST_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/test_blocks.h"
#include "tools/daemon_process.h"

namespace kvcache {

class DaemonTest : public ::testing::Test {
 protected:
  // Starts tests' kvstored with `flags`, makes stub_ and fills hello_.
  void StartDaemon(const std::vector<std::string>& flags) {
    auto d = DaemonProcess::Start("kvstore/kvstored", flags);
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = std::move(*d);
    stub_ = v1::KvCache::NewStub(
        grpc::CreateChannel(daemon_->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->Hello(&ctx, {}, &hello_).ok());
  }

  // Nothing pinned, staged or leased is left once the test's clients are done.
  void TearDown() override {
    if (stub_ == nullptr) return;
    v1::StatsResponse stats = AwaitNothingPinnedOrStaged(*stub_);
    EXPECT_EQ(stats.pinned_bytes(), 0u);
    EXPECT_EQ(stats.staged_bytes(), 0u);
    EXPECT_EQ(stats.leases_held(), 0u);
  }

  v1::StatsResponse Stats() {
    grpc::ClientContext ctx;
    v1::StatsResponse r;
    EXPECT_TRUE(stub_->Stats(&ctx, {}, &r).ok());
    return r;
  }

  // Fetches `chain` (blocks of `size` bytes) from namespace `ns`; *got says
  // how many leading blocks arrived (a miss, NOT_FOUND, is a normal answer).
  static std::vector<std::string> FetchAll(Client& client, const std::string& ns,
                                           const std::vector<BlockKey>& chain, size_t size,
                                           size_t* got) {
    std::vector<std::string> out(chain.size(), std::string(size, '\0'));
    std::vector<FetchTarget> targets;
    for (size_t i = 0; i < chain.size(); ++i) {
      targets.push_back(
          {chain[i], absl::MakeSpan(reinterpret_cast<uint8_t*>(out[i].data()), size)});
    }
    *got = client.Fetch(ns, targets).blocks;
    return out;
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<v1::KvCache::Stub> stub_;
  v1::HelloResponse hello_;
};

}  // namespace kvcache

#endif  // KVCACHE_TESTS_DAEMON_TEST_H_
