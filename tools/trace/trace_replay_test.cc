// The replay's bookkeeping against a real kvstored, on a hand-made trace
// whose answer is worked out below.
#include "tools/trace/trace_replay.h"

#include "gtest/gtest.h"
#include "tools/trace/hand_traces.h"
#include "tools/daemon_process.h"

namespace kvcache {
namespace {

const std::vector<TraceRequest> kFive = FiveRequests();

absl::StatusOr<ReplayResult> ReplayOn(uint64_t pages, int workers) {
  auto daemon = DaemonProcess::Start(
      "kvstore/kvstored", {absl::StrCat("--host_capacity=", pages * 4096), "--page_size=4KiB",
                           "--max_block_size=4KiB",
                           // The one client may pin a whole chain of this tiny arena.
                           "--connection_share=1"});
  if (!daemon.ok()) return daemon.status();
  auto keys = TraceKeys(kFive);
  if (!keys.ok()) return keys.status();
  ReplayOptions options;
  options.address = (*daemon)->address();
  options.payload_bytes = 4096;
  options.workers = workers;
  return ReplayTrace(kFive, *keys, options);
}

TEST(TraceReplayTest, KeysFollowTheChains) {
  auto keys = TraceKeys(kFive);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ((*keys)[0], (*keys)[2]);        // same chain, same keys
  EXPECT_EQ((*keys)[0][1], (*keys)[1][1]);  // shared prefix 1, 2
  EXPECT_NE((*keys)[0][2], (*keys)[1][2]);  // 3 vs 4
  EXPECT_NE((*keys)[3][1], (*keys)[1][1]);  // 5 vs 2
}

TEST(TraceReplayTest, UnboundedCacheHitsEveryRepeatedPrefix) {
  // r0 0, r1 2 (1,2), r2 3, r3 1, r4 3: as the offline references count.
  auto r = ReplayOn(64, 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->requests, 5u);
  EXPECT_EQ(r->hits.prompt_blocks, 15u);
  EXPECT_EQ(r->hits.hit_blocks, 9u);
  EXPECT_EQ(r->fetched_bytes, 9u * 4096);
  EXPECT_EQ(r->wrong_blocks, 0u);
  EXPECT_EQ(r->failed_calls, 0u);
  EXPECT_EQ(r->lookup_us.size(), 5u);
  EXPECT_EQ(r->fetch_us.size(), 4u);  // r0 had nothing to fetch
}

TEST(TraceReplayTest, FourPagesEvictLeastRecentLeavesOnly) {
  // r0 stores 1-2-3. r1 hits 1,2 and stores 4 under 2 (all four pages).
  // r2 hits 1,2,3. r3 hits 1; storing 5 evicts the older leaf, 4; storing 6
  // evicts 3 (5 is newer, and pinned as 6's parent). r4 hits 1,2 and misses 3.
  // 0+2+3+1+2 = 8: more than LRU's 6 at three blocks, less than Belady's 9.
  auto r = ReplayOn(4, 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->hits.hit_blocks, 8u);
  EXPECT_EQ(r->wrong_blocks, 0u);
  EXPECT_EQ(r->failed_calls, 0u);
}

TEST(TraceReplayTest, RejectsBadOptions) {
  ReplayOptions options;
  options.workers = 0;
  EXPECT_EQ(ReplayTrace(kFive, {}, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<double> v = {5, 1, 4, 2, 3};
  EXPECT_DOUBLE_EQ(Quantile(v, 0.5), 3);
  EXPECT_DOUBLE_EQ(Quantile(v, 1.0), 5);
}

}  // namespace
}  // namespace kvcache
