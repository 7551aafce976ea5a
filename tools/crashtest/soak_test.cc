// The memory soak's short mode, as CI runs it: a real kvstored under mixed
// load for 20 s must serve every byte right, stop cleanly, and keep its
// resident memory within its host arena plus the stated overhead.
#include "tools/crashtest/soak.h"

#include <sys/wait.h>
#include <unistd.h>

#include "absl/time/clock.h"

#include "gtest/gtest.h"

namespace kvcache {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;  // shadow memory and quarantines: no bound to hold
#else
constexpr bool kSanitized = false;
#endif

// docs/BENCHMARKS.md: the binary and libraries (about 26 MiB), gRPC's and
// the client connections' buffers, the index, RocksDB's memtables (capped
// at 2 x 4 MiB) and block cache (8 MiB).
constexpr uint64_t kStatedOverhead = 96ull << 20;

TEST(SoakTest, ResidentMemoryIsReadOnlyFromALiveProcess) {
  absl::StatusOr<ResidentMemory> self = ReadResidentMemory(getpid());
  ASSERT_TRUE(self.ok()) << self.status();
  EXPECT_GT(self->total, 0u);
  EXPECT_GT(self->file, 0u);
  const pid_t child = fork();
  if (child == 0) _exit(0);
  absl::SleepFor(absl::Milliseconds(200));  // exited, not yet waited for: a zombie
  EXPECT_EQ(ReadResidentMemory(child).status().code(), absl::StatusCode::kUnavailable);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(ReadResidentMemory(child).status().code(), absl::StatusCode::kUnavailable);
}

TEST(SoakTest, MixedLoadStaysWithinTheArenaPlusTheStatedOverhead) {
  SoakOptions options;
  options.kvstored = "kvstore/kvstored";
  options.dir = ::testing::TempDir() + "/soak";
  options.duration = absl::Seconds(20);
  absl::StatusOr<SoakReport> report = RunSoak(options);
  ASSERT_TRUE(report.ok()) << report.status();
  const SoakReport& r = *report;
  EXPECT_EQ(r.wrong_blocks, 0u);
  EXPECT_GT(r.blocks_verified, 0u);
  EXPECT_GT(r.blocks_put, 0u);
  EXPECT_GE(r.samples, 19u);
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_GT(r.max.shmem, r.host_capacity_bytes / 2);  // the arena is really in use
  std::cerr << "soak: resident max " << (r.max.total >> 20) << " MiB (heap " << (r.max.anon >> 20)
            << " MiB, arena " << (r.max.shmem >> 20) << " MiB), " << (r.OverheadBytes() >> 20)
            << " MiB past a " << (r.host_capacity_bytes >> 20) << " MiB arena\n";
  if (!kSanitized) {
    EXPECT_LE(r.OverheadBytes(), kStatedOverhead);
  }
}

}  // namespace
}  // namespace kvcache
