#include "gpu/pinned_memory.h"

#include <sys/mman.h>

#include "gpu/gpu_probe.h"
#include "gpu/gpu_test_util.h"
#include "gtest/gtest.h"

namespace kvcache {
namespace {

TEST(PinnedMemoryTest, EmptyRangesAreRejected) {
  int x = 0;
  EXPECT_EQ(PinnedRegistration::Create(nullptr, 4096).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PinnedRegistration::Create(&x, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PinnedBuffer::Create(0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PinnedMemoryTest, WithoutAGpuPinningSaysWhy) {
  if (ProbeGpu().device_count > 0) GTEST_SKIP() << "a GPU is here; see the next test";
  int x = 0;
  absl::Status status = PinnedRegistration::Create(&x, sizeof(x)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(status.message().empty());
  EXPECT_EQ(PinnedBuffer::Create(4096).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(IsPinned(&x));
}

// The arena's kind of memory: a shared mapping, pinned, then unpinned.
TEST(PinnedMemoryTest, ASharedMappingIsPinnedWhileRegistered) {
  KVCACHE_SKIP_WITHOUT_GPU();
  constexpr size_t kBytes = 8 << 20;
  void* region = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(region, MAP_FAILED);
  {
    auto pinned = PinnedRegistration::Create(region, kBytes);
    ASSERT_TRUE(pinned.ok()) << pinned.status();
    EXPECT_TRUE(IsPinned(region));
    EXPECT_TRUE(IsPinned(static_cast<char*>(region) + kBytes - 1));
  }
  EXPECT_FALSE(IsPinned(region));
  munmap(region, kBytes);

  auto buffer = PinnedBuffer::Create(1 << 20);
  ASSERT_TRUE(buffer.ok()) << buffer.status();
  EXPECT_TRUE(IsPinned((*buffer)->data()));
}

}  // namespace
}  // namespace kvcache
