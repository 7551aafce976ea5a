#include "tools/trace/prefix_sim.h"

#include "gtest/gtest.h"
#include "tools/trace/hand_traces.h"

namespace kvcache {
namespace {

// Worked by hand in the comments (cache listed most recent first for LRU;
// as {id: next use} for Belady).
const std::vector<TraceRequest> kFive = FiveRequests();

TEST(PrefixSimTest, LruByHand) {
  // r0 miss all: 3 2 1. r1 hits 1,2, then 4 evicts 3: 4 2 1.
  // r2 hits 1,2 (3 is gone): 3 evicts 4: 3 2 1. r3 hits 1: 5 evicts 2,
  // 6 evicts 3: 6 5 1. r4 hits 1 only.
  HitCount c = SimulateLru(kFive, 3);
  EXPECT_EQ(c.prompt_blocks, 15u);
  EXPECT_EQ(c.hit_blocks, 0u + 2 + 2 + 1 + 1);
}

TEST(PrefixSimTest, BeladyByHand) {
  // r0: {1:r1, 2:r1, 3:r2}. r1 hits 1,2; 4 is never used again, so it is
  // the one left out. r2 hits all three. r3 hits 1; 5 and 6 are never used
  // again: left out. r4 hits all three.
  HitCount c = SimulateBelady(kFive, 3);
  EXPECT_EQ(c.prompt_blocks, 15u);
  EXPECT_EQ(c.hit_blocks, 0u + 2 + 3 + 1 + 3);
}

TEST(PrefixSimTest, UnboundedCapacityIsTheSameForBoth) {
  EXPECT_EQ(SimulateLru(kFive, 1000).hit_blocks, 9u);
  EXPECT_EQ(SimulateBelady(kFive, 1000).hit_blocks, 9u);
}

TEST(PrefixSimTest, BlocksAfterTheFirstMissDoNotCount) {
  // 2 and 3 are cached when the second request comes, but its first block
  // misses, so none of it counts.
  auto trace = HandTrace({{1, 2, 3}, {4, 2, 3}});
  EXPECT_EQ(SimulateLru(trace, 10).hit_blocks, 0u);
  EXPECT_EQ(SimulateBelady(trace, 10).hit_blocks, 0u);
}

TEST(PrefixSimTest, CapacityOfOneBlock) {
  // LRU keeps only the last block touched (3, then 3 again...), so the
  // repeated chain never hits at its first block. Belady keeps 1, whose next
  // use is nearest, and hits it each time.
  auto trace = HandTrace({{1, 2, 3}, {1, 2, 3}, {1, 2, 3}});
  EXPECT_EQ(SimulateLru(trace, 1).hit_blocks, 0u);
  EXPECT_EQ(SimulateBelady(trace, 1).hit_blocks, 2u);
}

}  // namespace
}  // namespace kvcache
