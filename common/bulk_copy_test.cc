#include "common/bulk_copy.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

// Every length around the 128-byte loop step, at every source and
// destination misalignment within a vector, copies exactly and touches
// nothing outside the destination range.
TEST(BulkCopyTest, ExactForAllLengthsAndAlignments) {
  std::vector<uint8_t> src(2048);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 131 + 7);
  for (size_t n : {0, 1, 31, 32, 127, 128, 129, 255, 256, 1000, 1024, 1500}) {
    for (size_t so : {0, 1, 17, 31}) {
      for (size_t dof : {0, 3, 16, 31}) {
        for (auto copy : {&BulkCopy, &BulkCopyStreaming}) {
          std::vector<uint8_t> dst(src.size() + 64, 0xEE);
          copy(dst.data() + dof, src.data() + so, n);
          for (size_t i = 0; i < dst.size(); ++i) {
            const bool inside = i >= dof && i < dof + n;
            ASSERT_EQ(dst[i], inside ? src[so + i - dof] : 0xEE)
                << (copy == &BulkCopy ? "BulkCopy" : "BulkCopyStreaming") << " n=" << n
                << " src+" << so << " dst+" << dof << " at " << i;
          }
        }
      }
    }
  }
}

TEST(BulkCopyTest, LargeBlock) {
  std::vector<uint8_t> src(2 << 20), dst(2 << 20);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i ^ (i >> 11));
  BulkCopy(dst.data(), src.data(), src.size());
  EXPECT_EQ(dst, src);
  std::vector<uint8_t> streamed(2 << 20);
  BulkCopyStreaming(streamed.data() + 0, src.data(), src.size());
  EXPECT_EQ(streamed, src);
}

}  // namespace
}  // namespace kvcache
