// The paged KV copy kernels. One thread block moves one token's K or V row in
// one layer (grid: tokens x 2 * layers), in the widest word that the row
// size and every pointer's alignment allow.
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu/paged_kv_launch.h"

namespace kvcache {
namespace {

constexpr int kThreads = 128;

template <typename Word>
__global__ void PagedKvCopyKernel(PagedKvLaunch launch, char* block, bool to_pages) {
  const uint64_t token = blockIdx.x;
  const uint64_t tensor = blockIdx.y;  // 2 * layer + (0 for K, 1 for V)
  const uint64_t slot = launch.page_offset + token;
  const uint64_t page = static_cast<uint64_t>(launch.pages[slot / launch.page_tokens]);
  const uint64_t row = slot % launch.page_tokens;

  char* cached = block + (tensor * launch.block_tokens + token) * launch.row_bytes;
  char* paged = static_cast<char*>(launch.tensors[tensor]) +
                (page * launch.page_tokens + row) * launch.row_bytes;
  Word* dst = reinterpret_cast<Word*>(to_pages ? paged : cached);
  const Word* src = reinterpret_cast<const Word*>(to_pages ? cached : paged);
  const uint64_t words = launch.row_bytes / sizeof(Word);
  for (uint64_t i = threadIdx.x; i < words; i += blockDim.x) dst[i] = src[i];
}

// The widest of 16, 8, 4, 2, 1 bytes dividing the row and every base address.
int WordBytes(const PagedKvLaunch& launch, const void* block) {
  uintptr_t bits = launch.row_bytes | reinterpret_cast<uintptr_t>(block);
  for (uint32_t i = 0; i < 2 * launch.layers; ++i) {
    bits |= reinterpret_cast<uintptr_t>(launch.tensors[i]);
  }
  for (int width = 16; width > 1; width /= 2) {
    if (bits % width == 0) return width;
  }
  return 1;
}

}  // namespace

int LaunchPagedKvCopy(const PagedKvLaunch& launch, void* block, bool to_pages,
                      CUstream_st* stream) {
  const dim3 grid(launch.block_tokens, 2 * launch.layers);
  char* bytes = static_cast<char*>(block);
  switch (WordBytes(launch, block)) {
    case 16:
      PagedKvCopyKernel<uint4><<<grid, kThreads, 0, stream>>>(launch, bytes, to_pages);
      break;
    case 8:
      PagedKvCopyKernel<uint2><<<grid, kThreads, 0, stream>>>(launch, bytes, to_pages);
      break;
    case 4:
      PagedKvCopyKernel<uint32_t><<<grid, kThreads, 0, stream>>>(launch, bytes, to_pages);
      break;
    case 2:
      PagedKvCopyKernel<uint16_t><<<grid, kThreads, 0, stream>>>(launch, bytes, to_pages);
      break;
    default:
      PagedKvCopyKernel<uint8_t><<<grid, kThreads, 0, stream>>>(launch, bytes, to_pages);
      break;
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace kvcache
