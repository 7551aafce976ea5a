#include "gpu/device_page_pool.h"

#include <algorithm>
#include <set>
#include <string>

#include "gpu/gpu_probe.h"
#include "gpu/gpu_test_util.h"
#include "gtest/gtest.h"

#if KVCACHE_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace kvcache {
namespace {

TEST(DevicePagePoolTest, BadOptionsAreRejectedEverywhere) {
  EXPECT_EQ(DevicePagePool::Create({0, 1 << 30, 3 << 20}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DevicePagePool::Create({0, 1 << 30, 4096}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DevicePagePool::Create({0, 1 << 20, 2 << 20}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DevicePagePoolTest, WithoutAGpuCreateSaysWhy) {
  if (ProbeGpu().device_count > 0) {
    EXPECT_EQ(DevicePagePool::Create({99, 64 << 20, 2 << 20}).status().code(),
              absl::StatusCode::kUnavailable);
    return;
  }
  absl::Status status = DevicePagePool::Create({0, 64 << 20, 2 << 20}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(status.message().empty());
}

#if KVCACHE_HAVE_CUDA

TEST(DevicePagePoolTest, PagesAreAllOrNothingAndHoldTheirBytes) {
  KVCACHE_SKIP_WITHOUT_GPU();
  auto pool = DevicePagePool::Create({0, 16 << 20, 1 << 20});
  ASSERT_TRUE(pool.ok()) << pool.status();
  DevicePagePool& p = **pool;
  EXPECT_EQ(p.page_count(), 16u);
  EXPECT_EQ(p.PagesFor(1), 1u);
  EXPECT_EQ(p.PagesFor((1 << 20) + 1), 2u);
  std::vector<uint32_t> a, b;
  ASSERT_TRUE(p.Allocate(10, &a));
  EXPECT_FALSE(p.Allocate(7, &b));  // only 6 left
  EXPECT_TRUE(b.empty());
  ASSERT_TRUE(p.Allocate(6, &b));
  std::set<uint32_t> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 16u);  // every page once
  EXPECT_EQ(p.free_pages(), 0u);

  // Each page holds its own bytes: write a distinct pattern to each, read back.
  for (uint32_t page : all) {
    ASSERT_EQ(cudaMemset(p.PageData(page), static_cast<int>(page), 1 << 20), cudaSuccess);
  }
  std::string back(1 << 20, '\0');
  for (uint32_t page : all) {
    ASSERT_EQ(cudaMemcpy(back.data(), p.PageData(page), back.size(), cudaMemcpyDeviceToHost),
              cudaSuccess);
    EXPECT_EQ(back, std::string(1 << 20, static_cast<char>(page))) << "page " << page;
  }
  p.Free(a);
  EXPECT_EQ(p.free_pages(), 10u);
  EXPECT_NE(p.detail().find("16 pages of 1024 KiB on GPU 0"), std::string::npos) << p.detail();
}

#endif

}  // namespace
}  // namespace kvcache
