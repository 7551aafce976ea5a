#include "gpu/device_page_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
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

TEST(DevicePagePoolTest, AHostBackedPoolIsSharedAsAReadOnlyMemfd) {
  auto pool = DevicePagePool::CreateHostBacked({0, 4 << 20, 1 << 20});
  ASSERT_TRUE(pool.ok()) << pool.status();
  DevicePagePool& p = **pool;
  std::vector<uint32_t> pages;
  ASSERT_TRUE(p.Allocate(2, &pages));
  std::memset(p.PageData(pages[1]), 0x5C, 100);
  absl::StatusOr<DevicePagePool::Share> share = p.Export();
  ASSERT_TRUE(share.ok()) << share.status();
  EXPECT_TRUE(share->ipc_handle.empty());
  ASSERT_GE(share->memfd, 0);
  // What another process would do with the fd: only a read-only mapping
  // works, and it sees the pool's bytes.
  EXPECT_EQ(mmap(nullptr, p.bytes(), PROT_READ | PROT_WRITE, MAP_SHARED, share->memfd, 0),
            MAP_FAILED);
  void* seen = mmap(nullptr, p.bytes(), PROT_READ, MAP_SHARED, share->memfd, 0);
  ASSERT_NE(seen, MAP_FAILED);
  const uint8_t* at = static_cast<const uint8_t*>(seen) + uint64_t{pages[1]} * p.page_bytes();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(at), 100), std::string(100, '\x5C'));
  munmap(seen, p.bytes());
}

#if KVCACHE_HAVE_CUDA

TEST(DevicePagePoolTest, AGpuPoolIsSharedThroughACudaIpcHandle) {
  KVCACHE_SKIP_WITHOUT_GPU();
  auto pool = DevicePagePool::Create({0, 16 << 20, 1 << 20});
  ASSERT_TRUE(pool.ok()) << pool.status();
  absl::StatusOr<DevicePagePool::Share> share = (*pool)->Export();
  ASSERT_TRUE(share.ok()) << share.status();
  EXPECT_EQ(share->ipc_handle.size(), sizeof(cudaIpcMemHandle_t));
  EXPECT_EQ(share->memfd, -1);
  int device = -1;
  ASSERT_EQ(cudaDeviceGetByPCIBusId(&device, share->pci_bus_id.c_str()), cudaSuccess)
      << share->pci_bus_id;
  EXPECT_EQ(device, 0);
}

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
