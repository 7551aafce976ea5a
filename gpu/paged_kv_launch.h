// What gpu/paged_kv_kernels.cu needs to launch a copy: plain data only, since
// nvcc sees no Abseil. Filled and validated by gpu/paged_kv_cuda.cc.
#ifndef KVCACHE_GPU_PAGED_KV_LAUNCH_H_
#define KVCACHE_GPU_PAGED_KV_LAUNCH_H_

#include <cstdint>

struct CUstream_st;

namespace kvcache {

// Passed by value as the kernel's parameter (under 4 KiB).
struct PagedKvLaunch {
  static constexpr uint32_t kMaxLayers = 128;
  static constexpr uint32_t kMaxPages = 256;

  void* tensors[2 * kMaxLayers];  // layer L's K at 2L, V at 2L + 1
  int32_t pages[kMaxPages];
  uint64_t row_bytes;
  uint32_t layers;
  uint32_t page_tokens;
  uint32_t block_tokens;
  uint32_t page_offset;
};

// Queues one kernel that copies the block to the pages (to_pages) or back.
// Returns the cudaError_t of the launch (0 is success).
int LaunchPagedKvCopy(const PagedKvLaunch& launch, void* block, bool to_pages, CUstream_st* stream);

}  // namespace kvcache

#endif  // KVCACHE_GPU_PAGED_KV_LAUNCH_H_
