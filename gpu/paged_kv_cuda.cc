#include <cuda_runtime_api.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "gpu/paged_kv.h"
#include "gpu/paged_kv_launch.h"

namespace kvcache {
namespace {

static_assert(PagedKvLaunch::kMaxLayers == kMaxPagedLayers);
static_assert(PagedKvLaunch::kMaxPages == kMaxBlockPages);
static_assert(sizeof(PagedKvLaunch) < 4096, "kernel parameters are limited to 4 KiB");

absl::Status Launch(const PagedKvCache& cache, const BlockPlacement& placement, void* block,
                    bool to_pages, GpuStream stream) {
  if (absl::Status valid = ValidatePlacement(cache, placement); !valid.ok()) return valid;
  if (block == nullptr) return absl::InvalidArgumentError("block pointer is null");
  PagedKvLaunch launch;
  std::memset(&launch, 0, sizeof(launch));
  for (uint32_t layer = 0; layer < cache.shape.layers; ++layer) {
    launch.tensors[2 * layer] = cache.k[layer];
    launch.tensors[2 * layer + 1] = cache.v[layer];
  }
  std::memcpy(launch.pages, placement.pages.data(), placement.pages.size() * sizeof(int32_t));
  launch.row_bytes = cache.shape.row_bytes();
  launch.layers = cache.shape.layers;
  launch.page_tokens = cache.shape.page_tokens;
  launch.block_tokens = placement.block_tokens;
  launch.page_offset = placement.page_offset;
  const auto err = static_cast<cudaError_t>(LaunchPagedKvCopy(launch, block, to_pages, stream));
  if (err != cudaSuccess) {
    return absl::InternalError(absl::StrCat(to_pages ? "scatter" : "gather",
                                            " kernel launch failed: ", cudaGetErrorString(err)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ScatterBlockToPages(const void* block, const PagedKvCache& cache,
                                 const BlockPlacement& placement, GpuStream stream) {
  return Launch(cache, placement, const_cast<void*>(block), /*to_pages=*/true, stream);
}

absl::Status GatherBlockFromPages(const PagedKvCache& cache, const BlockPlacement& placement,
                                  void* block, GpuStream stream) {
  return Launch(cache, placement, block, /*to_pages=*/false, stream);
}

}  // namespace kvcache
