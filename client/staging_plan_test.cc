#include "client/staging_plan.h"

#include "gtest/gtest.h"

namespace kvcache {
namespace {

TEST(StagingPlanTest, SmallItemsStayWholeAndBigOnesSpanRounds) {
  // Slot of 10: 3 and 4 share the first round; the 14 fills its last 3 bytes
  // and all of the second round, ending 1 byte into the third; the 5 fits
  // after it whole; the 6 does not, so it starts a fourth round.
  const auto rounds = PlanStagingRounds({3, 4, 14, 5, 6}, 10);
  ASSERT_EQ(rounds.size(), 4u);
  ASSERT_EQ(rounds[0].size(), 3u);
  EXPECT_EQ(rounds[0][0].item, 0u);
  EXPECT_TRUE(rounds[0][0].last);
  EXPECT_EQ(rounds[0][1].staging, 3u);
  EXPECT_EQ(rounds[0][2].item, 2u);
  EXPECT_EQ(rounds[0][2].bytes, 3u);
  EXPECT_EQ(rounds[0][2].staging, 7u);
  EXPECT_FALSE(rounds[0][2].last);
  ASSERT_EQ(rounds[1].size(), 1u);
  EXPECT_EQ(rounds[1][0].offset, 3u);
  EXPECT_EQ(rounds[1][0].bytes, 10u);
  EXPECT_FALSE(rounds[1][0].last);
  ASSERT_EQ(rounds[2].size(), 2u);
  EXPECT_EQ(rounds[2][0].offset, 13u);  // 3 + 10 bytes came before
  EXPECT_EQ(rounds[2][0].bytes, 1u);
  EXPECT_TRUE(rounds[2][0].last);
  EXPECT_EQ(rounds[2][1].item, 3u);
  EXPECT_EQ(rounds[2][1].bytes, 5u);
  EXPECT_EQ(rounds[2][1].staging, 1u);
  ASSERT_EQ(rounds[3].size(), 1u);
  EXPECT_EQ(rounds[3][0].item, 4u);
  EXPECT_EQ(rounds[3][0].staging, 0u);
  EXPECT_EQ(rounds[3][0].bytes, 6u);
}

TEST(StagingPlanTest, EveryByteIsPlannedOnceInOrder) {
  const std::vector<uint64_t> sizes = {1, 64, 65, 0, 200, 7};
  const auto rounds = PlanStagingRounds(sizes, 64);
  std::vector<uint64_t> seen(sizes.size(), 0);
  size_t last_item = 0;
  for (const auto& round : rounds) {
    uint64_t used = 0;
    for (const StagedPiece& p : round) {
      EXPECT_GE(p.item, last_item);
      last_item = p.item;
      EXPECT_EQ(p.offset, seen[p.item]);
      EXPECT_EQ(p.staging, used);
      seen[p.item] += p.bytes;
      used += p.bytes;
      EXPECT_EQ(p.last, seen[p.item] == sizes[p.item]);
    }
    EXPECT_LE(used, 64u);
    for (const StagedPiece& p : round) {
      if (sizes[p.item] <= 64) {
        EXPECT_EQ(p.bytes, sizes[p.item]) << "item " << p.item << " was cut";
      }
    }
  }
  for (size_t i = 0; i < sizes.size(); ++i) EXPECT_EQ(seen[i], sizes[i]) << i;
}

TEST(StagingPlanTest, NothingToMoveIsNoRounds) { EXPECT_TRUE(PlanStagingRounds({}, 64).empty()); }

}  // namespace
}  // namespace kvcache
