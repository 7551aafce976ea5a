#include "gpu/paged_kv.h"

namespace kvcache {

absl::Status ScatterBlockToPages(const void* block, const PagedKvCache& cache,
                                 const BlockPlacement& placement, GpuStream) {
  if (absl::Status valid = ValidatePlacement(cache, placement); !valid.ok()) return valid;
  return absl::UnavailableError("built without CUDA: no paged KV kernels");
}

absl::Status GatherBlockFromPages(const PagedKvCache& cache, const BlockPlacement& placement, void*,
                                  GpuStream) {
  if (absl::Status valid = ValidatePlacement(cache, placement); !valid.ok()) return valid;
  return absl::UnavailableError("built without CUDA: no paged KV kernels");
}

}  // namespace kvcache
