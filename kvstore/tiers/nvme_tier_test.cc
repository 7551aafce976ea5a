#include "kvstore/tiers/nvme_tier.h"

#include <cstdlib>
#include <filesystem>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

class NvmeTierTest : public ::testing::Test {
 protected:
  std::unique_ptr<NvmeTier> Open(uint64_t bytes_per_sec, uint32_t min_hits) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    const std::string dir = std::string(tmp ? tmp : "/tmp") + "/nvme_tier_test";
    std::filesystem::remove_all(dir);
    NvmeTier::Options options;
    options.store.dir = dir;
    options.store.bytes = 1 << 20;
    options.write_bytes_per_sec = bytes_per_sec;
    options.admit_min_hits = min_hits;
    absl::StatusOr<std::unique_ptr<NvmeTier>> tier = NvmeTier::Open(options, &names_);
    EXPECT_TRUE(tier.ok()) << tier.status();
    return tier.ok() ? std::move(*tier) : nullptr;
  }
  NamespaceTable names_{16};
};

TEST_F(NvmeTierTest, WriteBudgetAdmitsOneSecondsWorthThenRefills) {
  auto tier = Open(/*bytes_per_sec=*/1 << 20, /*min_hits=*/0);
  ASSERT_NE(tier, nullptr);
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(tier->Admit(0, 256 << 10, t0)) << i;
  EXPECT_FALSE(tier->Admit(0, 256 << 10, t0));  // 1 MiB spent
  const absl::Time later = t0 + absl::Milliseconds(500);  // 512 KiB back
  EXPECT_TRUE(tier->Admit(0, 256 << 10, later));
  EXPECT_TRUE(tier->Admit(0, 256 << 10, later));
  EXPECT_FALSE(tier->Admit(0, 256 << 10, later));
  EXPECT_TRUE(tier->Admit(0, 256 << 10, t0 + absl::Seconds(10)));  // holds at most 1 s
  EXPECT_TRUE(tier->Admit(0, 256 << 10, t0 + absl::Seconds(10)));
  EXPECT_TRUE(tier->Admit(0, 256 << 10, t0 + absl::Seconds(10)));
  EXPECT_TRUE(tier->Admit(0, 256 << 10, t0 + absl::Seconds(10)));
  EXPECT_FALSE(tier->Admit(0, 256 << 10, t0 + absl::Seconds(10)));
  EXPECT_EQ(tier->counters().not_admitted, 3u);
}

TEST_F(NvmeTierTest, HitAdmissionRefusesBlocksReadTooRarely) {
  auto tier = Open(/*bytes_per_sec=*/0, /*min_hits=*/2);
  ASSERT_NE(tier, nullptr);
  EXPECT_FALSE(tier->Admit(0, 4096));
  EXPECT_FALSE(tier->Admit(1, 4096));
  EXPECT_TRUE(tier->Admit(2, 4096));
  EXPECT_TRUE(tier->Admit(9, 1ull << 40));  // no budget: any size
  EXPECT_EQ(tier->counters().not_admitted, 2u);
  EXPECT_TRUE(tier->enabled());
}

}  // namespace
}  // namespace kvcache
