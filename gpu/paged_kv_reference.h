// The CPU reference for the paged KV kernels: element by element, written
// from the layout's definition (gpu/paged_kv_layout.h) and not from the
// kernels, so a test comparing the two checks the kernels' index arithmetic.
// Host pointers only.
#ifndef KVCACHE_GPU_PAGED_KV_REFERENCE_H_
#define KVCACHE_GPU_PAGED_KV_REFERENCE_H_

#include "absl/status/status.h"
#include "gpu/paged_kv_layout.h"

namespace kvcache {

// Copies the contiguous `block` (shape.block_bytes(block_tokens) bytes) into
// the cache's pages at `placement`. Touches no other cache byte.
absl::Status ScatterBlockOnHost(const void* block, const PagedKvCache& cache,
                                const BlockPlacement& placement);

// The inverse: fills `block` from the cache's pages at `placement`.
absl::Status GatherBlockOnHost(const PagedKvCache& cache, const BlockPlacement& placement,
                               void* block);

}  // namespace kvcache

#endif  // KVCACHE_GPU_PAGED_KV_REFERENCE_H_
