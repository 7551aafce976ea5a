// The crash test's short mode, as CI runs it: 20 kill -9 cycles of a real
// kvstored with bits flipped in its NVMe files, every hit checked.
#include "tools/crashtest/crash_test.h"

#include "gtest/gtest.h"

namespace kvcache {
namespace {

TEST(CrashTest, TwentyKillsWithFlippedBitsServeNoWrongByte) {
  CrashTestOptions options;
  options.kvstored = "kvstore/kvstored";
  options.dir = ::testing::TempDir() + "/crashtest";
  options.cycles = 20;
  options.seed = 20261203;
  options.index_damage_every = 3;  // six index damages, none right before the final sweep
  absl::StatusOr<CrashTestReport> report = RunCrashTest(options);
  ASSERT_TRUE(report.ok()) << report.status();
  const CrashTestReport& r = *report;
  EXPECT_EQ(r.cycles, 20);
  EXPECT_EQ(r.wrong_blocks, 0u);
  EXPECT_GT(r.blocks_verified, 100u);
  EXPECT_GT(r.final_blocks_verified, 0u);  // the last sweep found blocks kept through the kills
  EXPECT_GT(r.restored_blocks_max, 0u);    // restarts found NVMe blocks
  EXPECT_EQ(r.nvme_off_restarts, 0u);      // a damaged index never took the tier away
  EXPECT_EQ(r.data_bits_flipped, 40u);
  EXPECT_EQ(r.index_bits_flipped, 6u);
  EXPECT_EQ(r.restart_ms.size(), 21u);
  EXPECT_EQ(r.final_exit_status, 0);
  EXPECT_TRUE(r.Passed());
  std::cerr << "crash test: " << r.blocks_verified << " blocks verified, " << r.index_set_aside
            << " index set aside, restart p50 " << r.RestartMedianMs() << " ms, max "
            << r.RestartMaxMs() << " ms\n";
}

}  // namespace
}  // namespace kvcache
