#include "common/range_allocator.h"

#include "gtest/gtest.h"

namespace kvcache {
namespace {

TEST(RangeAllocatorTest, LowestFirstAndNeighboursMerge) {
  RangeAllocator a(10 * 4096, 4096);
  EXPECT_EQ(*a.Allocate(4096), 0u);
  EXPECT_EQ(*a.Allocate(5000), 4096u);  // two units
  EXPECT_EQ(*a.Allocate(1), 3 * 4096u);
  EXPECT_EQ(a.used_bytes(), 4 * 4096u);
  a.Free(4096, 5000);
  EXPECT_EQ(*a.Allocate(4096), 4096u);  // the lowest hole
  EXPECT_EQ(a.Allocate(9 * 4096).status().code(), absl::StatusCode::kResourceExhausted);
  a.Free(0, 4096);
  a.Free(3 * 4096, 1);
  a.Free(4096, 4096);
  EXPECT_EQ(a.used_bytes(), 0u);
  EXPECT_EQ(*a.Allocate(10 * 4096), 0u);  // all merged back into one range
}

TEST(RangeAllocatorTest, RejectsWhatCanNeverFit) {
  RangeAllocator a(4096, 4096);
  EXPECT_EQ(a.Allocate(0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a.Allocate(4097).status().code(), absl::StatusCode::kInvalidArgument);
}

// Rebuilding free space from what is found on disk.
TEST(RangeAllocatorTest, MarkUsedCarvesFoundRanges) {
  RangeAllocator a(8 * 4096, 4096);
  ASSERT_TRUE(a.MarkUsed(2 * 4096, 4096).ok());
  ASSERT_TRUE(a.MarkUsed(5 * 4096, 8192).ok());
  EXPECT_EQ(a.used_bytes(), 3 * 4096u);
  EXPECT_FALSE(a.MarkUsed(2 * 4096, 1).ok());     // already used
  EXPECT_FALSE(a.MarkUsed(6 * 4096, 4096).ok());  // inside a used range
  EXPECT_FALSE(a.MarkUsed(7 * 4096, 8192).ok());  // past the end
  EXPECT_FALSE(a.MarkUsed(100, 4096).ok());       // not aligned
  EXPECT_EQ(*a.Allocate(8192), 0u);
  EXPECT_EQ(*a.Allocate(8192), 3 * 4096u);
  EXPECT_EQ(*a.Allocate(4096), 7 * 4096u);
  EXPECT_EQ(a.Allocate(4096).status().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace kvcache
