#include "gpu/copy_batch.h"

#include "gtest/gtest.h"

namespace kvcache {
namespace {

TEST(CopyBatchTest, MergesRunsThatAreContiguousOnBothSides) {
  char src[64], dst[64];
  const std::vector<CopyOp> merged = CoalesceCopies({
      {dst, src, 8},
      {dst + 8, src + 8, 8},    // continues both: merged
      {dst + 16, src + 24, 8},  // source jumps: new copy
      {dst + 24, src + 32, 0},  // empty: dropped, and does not break the run
      {dst + 24, src + 32, 4},  // continues the previous copy: merged
      {dst + 40, src + 36, 4},  // destination jumps: new copy
  });
  ASSERT_EQ(merged.size(), 3u);
  EXPECT_EQ(merged[0].dst, dst);
  EXPECT_EQ(merged[0].src, src);
  EXPECT_EQ(merged[0].bytes, 16u);
  EXPECT_EQ(merged[1].dst, dst + 16);
  EXPECT_EQ(merged[1].src, src + 24);
  EXPECT_EQ(merged[1].bytes, 12u);
  EXPECT_EQ(merged[2].dst, dst + 40);
  EXPECT_EQ(merged[2].bytes, 4u);
}

TEST(CopyBatchTest, NothingToCopyGivesAnEmptyBatch) {
  char a[4], b[4];
  EXPECT_TRUE(CoalesceCopies({}).empty());
  EXPECT_TRUE(CoalesceCopies({{a, b, 0}}).empty());
}

}  // namespace
}  // namespace kvcache
