// Same-host direct reads: a worker copies the blocks the daemon lists in its
// shared block directory with no request at all. They must be byte-exact,
// gone the moment an operator evicts them, and still counted by the daemon
// (hits, recency, Stats) once the worker reports them.
#include <chrono>
#include <thread>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/daemon_test.h"
#include "tests/test_blocks.h"

namespace kvcache {
namespace {

constexpr size_t kSize = 200000;  // four 64 KiB pages, the last partly used

class E2eDirectReadsTest : public DaemonTest {
 protected:
  void SetUp() override { StartDaemon({"--host_capacity=16MiB", "--page_size=64KiB"}); }

  std::unique_ptr<Client> Connect(bool direct_reads) {
    ClientOptions options = TestClientOptions(daemon_->address());
    options.use_direct_reads = direct_reads;
    return *Client::Create(options);
  }

  uint64_t Hits(const BlockKey& key) {
    grpc::ClientContext ctx;
    v1::InspectRequest req;
    req.set_namespace_(ns_);
    req.set_key(key.ToBytes());
    v1::InspectResponse resp;
    EXPECT_TRUE(stub_->Inspect(&ctx, req, &resp).ok());
    return resp.hits();
  }

  // Waits (up to 10 s) for the daemon to count `n` direct reads: workers
  // report them a few milliseconds after the fact.
  v1::StatsResponse AwaitDirectReads(uint64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    v1::StatsResponse s = Stats();
    while (s.direct_reads() < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      s = Stats();
    }
    return s;
  }

  const std::string ns_ = TestSchema().NamespaceName();
};

TEST_F(E2eDirectReadsTest, ListedBlocksAreByteExactAndCountedByTheDaemon) {
  std::unique_ptr<Client> client = Connect(true);
  std::vector<BlockKey> chain = TestChain(1, 4);
  ASSERT_TRUE(client->Put(ns_, BlockKey(), TestPayloads(chain, kSize)).ok());
  EXPECT_TRUE(absl::StrContains(Stats().block_directory(), "4 blocks listed"))
      << Stats().block_directory();

  // The first fetch takes a lease, and learns the namespace's id with it.
  size_t got = 0;
  FetchAll(*client, ns_, chain, kSize, &got);
  EXPECT_EQ(got, 4u);
  EXPECT_EQ(client->counters().local_direct_reads, 0u);
  // From then on no request is made.
  std::vector<std::string> out = FetchAll(*client, ns_, chain, kSize, &got);
  EXPECT_EQ(got, 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(out[i], PayloadFor(chain[i], kSize)) << i;
  EXPECT_EQ(client->counters().local_direct_reads, 4u);
  EXPECT_EQ(client->counters().local_path_fallbacks, 0u);

  // A range that starts mid-page and spans pages.
  std::string range(100000, '\0');
  FetchTarget target{chain[1], absl::MakeSpan(reinterpret_cast<uint8_t*>(range.data()), 100000),
                     50000};
  EXPECT_EQ(client->Fetch(ns_, {&target, 1}).blocks, 1u);
  EXPECT_EQ(range, PayloadFor(chain[1], kSize).substr(50000, 100000));
  EXPECT_EQ(client->counters().local_direct_reads, 5u);

  // Reported afterwards: the daemon counts the reads, the fetch calls and
  // the hits of each block.
  v1::StatsResponse s = AwaitDirectReads(5);
  EXPECT_EQ(s.direct_reads(), 5u);
  EXPECT_EQ(s.fetches(), 3u);  // one by lease, two answered from the directory
  EXPECT_EQ(Hits(chain[0]), 2u);
  EXPECT_EQ(Hits(chain[1]), 3u);
}

TEST_F(E2eDirectReadsTest, EvictedBlocksAreMissesAtOnce) {
  std::unique_ptr<Client> client = Connect(true);
  std::vector<BlockKey> chain = TestChain(2, 4);
  ASSERT_TRUE(client->Put(ns_, BlockKey(), TestPayloads(chain, kSize)).ok());
  size_t got = 0;
  FetchAll(*client, ns_, chain, kSize, &got);  // learns the namespace
  grpc::ClientContext ctx;
  v1::EvictRequest evict;
  evict.mutable_subtree()->set_namespace_(ns_);
  evict.mutable_subtree()->set_key(chain[2].ToBytes());
  v1::EvictResponse evicted;
  ASSERT_TRUE(stub_->Evict(&ctx, evict, &evicted).ok());
  // The first two still come straight from the directory; the lease path
  // then says the third is gone.
  const uint64_t before = client->counters().local_direct_reads;
  std::vector<std::string> out = FetchAll(*client, ns_, chain, kSize, &got);
  EXPECT_EQ(got, 2u);
  EXPECT_EQ(out[0], PayloadFor(chain[0], kSize));
  EXPECT_EQ(out[1], PayloadFor(chain[1], kSize));
  EXPECT_EQ(client->counters().local_direct_reads - before, 2u);
  EXPECT_TRUE(absl::StrContains(Stats().block_directory(), "2 blocks listed"));
  // And with the whole chain gone, a fetch is a plain miss.
  evict.mutable_subtree()->set_key(chain[0].ToBytes());
  grpc::ClientContext ctx2;
  ASSERT_TRUE(stub_->Evict(&ctx2, evict, &evicted).ok());
  FetchAll(*client, ns_, chain, kSize, &got);
  EXPECT_EQ(got, 0u);
}

TEST_F(E2eDirectReadsTest, TurnedOffEveryFetchTakesALease) {
  std::unique_ptr<Client> client = Connect(false);
  std::vector<BlockKey> chain = TestChain(3, 2);
  ASSERT_TRUE(client->Put(ns_, BlockKey(), TestPayloads(chain, kSize)).ok());
  size_t got = 0;
  for (int i = 0; i < 3; ++i) {
    std::vector<std::string> out = FetchAll(*client, ns_, chain, kSize, &got);
    EXPECT_EQ(got, 2u);
    EXPECT_EQ(out[1], PayloadFor(chain[1], kSize));
  }
  EXPECT_EQ(client->counters().local_direct_reads, 0u);
  EXPECT_EQ(client->counters().local_path_blocks, 2u + 6u);
  EXPECT_EQ(Stats().direct_reads(), 0u);
}

}  // namespace
}  // namespace kvcache
