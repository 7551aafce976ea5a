#include "common/byte_size.h"

#include "gtest/gtest.h"

namespace kvcache {
namespace {

TEST(ByteSizeTest, ParsesUnits) {
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_EQ(*ParseByteSize("256KiB"), 256u << 10);
  EXPECT_EQ(*ParseByteSize("1.5 GiB"), 3ull << 29);
  EXPECT_EQ(*ParseByteSize("64MB"), 64000000u);
  EXPECT_EQ(*ParseByteSize("2g"), 2ull << 30);
}

TEST(ByteSizeTest, RejectsGarbage) {
  for (const char* bad : {"", "GiB", "12 parsecs", "-5", "1e99TiB", "1.2.3"}) {
    EXPECT_EQ(ParseByteSize(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ByteSizeTest, Formats) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(2ull << 30), "2.0 GiB");
}

}  // namespace
}  // namespace kvcache
