#include "gpu/device_memory.h"

#include <cstring>
#include <random>
#include <vector>

#include "gpu/gpu_test_util.h"
#include "gpu/pinned_memory.h"
#include "gtest/gtest.h"

namespace kvcache {
namespace {

constexpr uint32_t kPage = 64 << 10;

// Uploads `pages` random pages from pinned memory, downloads them into a
// poisoned buffer in reverse page order, and checks every byte.
void RoundTrip(DeviceMemory& memory, uint32_t page_count) {
  std::vector<uint32_t> pages;
  ASSERT_TRUE(memory.pool().Allocate(page_count, &pages));
  auto in = PinnedBuffer::Create(uint64_t{page_count} * kPage);
  auto out = PinnedBuffer::Create(uint64_t{page_count} * kPage);
  std::vector<uint8_t> plain_in, plain_out;
  uint8_t* src = nullptr;
  uint8_t* dst = nullptr;
  if (in.ok() && out.ok()) {
    src = (*in)->data();
    dst = (*out)->data();
  } else {  // no CUDA: ordinary memory does for the host-backed pool
    plain_in.resize(uint64_t{page_count} * kPage);
    plain_out.resize(plain_in.size());
    src = plain_in.data();
    dst = plain_out.data();
  }
  std::mt19937_64 rng(page_count);
  for (uint64_t i = 0; i < uint64_t{page_count} * kPage; ++i) src[i] = static_cast<uint8_t>(rng());
  std::memset(dst, 0xA5, uint64_t{page_count} * kPage);
  std::vector<CopyOp> up, down;
  for (uint32_t i = 0; i < page_count; ++i) {
    up.push_back({memory.pool().PageData(pages[i]), src + uint64_t{i} * kPage, kPage});
    const uint32_t j = page_count - 1 - i;
    down.push_back({dst + uint64_t{j} * kPage, memory.pool().PageData(pages[i]), kPage});
  }
  ASSERT_TRUE(memory.Upload(up).ok());
  ASSERT_TRUE(memory.Download(down).ok());
  for (uint32_t i = 0; i < page_count; ++i) {
    const uint32_t j = page_count - 1 - i;
    ASSERT_EQ(std::memcmp(dst + uint64_t{j} * kPage, src + uint64_t{i} * kPage, kPage), 0) << i;
  }
  memory.pool().Free(pages);
}

TEST(DeviceMemoryTest, HostBackedPoolMovesBytesLikeTheRealOne) {
  auto memory = DeviceMemory::CreateHostBacked({0, 16 * kPage, kPage});
  ASSERT_TRUE(memory.ok()) << memory.status();
  EXPECT_TRUE((*memory)->pool().host_backed());
  EXPECT_EQ((*memory)->pool().page_count(), 16u);
  EXPECT_NE((*memory)->detail().find("host memory"), std::string::npos) << (*memory)->detail();
  RoundTrip(**memory, 16);
  EXPECT_EQ((*memory)->pool().free_pages(), 16u);
}

TEST(DeviceMemoryTest, BadOptionsAreRejectedEitherWay) {
  EXPECT_EQ(DeviceMemory::CreateHostBacked({0, 16 * kPage, 3 * kPage}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DeviceMemory::Create({0, 16 * kPage, 3 * kPage}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DeviceMemoryTest, GpuPoolRoundTrips) {
  KVCACHE_SKIP_WITHOUT_GPU();
  auto memory = DeviceMemory::Create({0, 64 * kPage, kPage});
  ASSERT_TRUE(memory.ok()) << memory.status();
  EXPECT_FALSE((*memory)->pool().host_backed());
  RoundTrip(**memory, 64);
}

}  // namespace
}  // namespace kvcache
