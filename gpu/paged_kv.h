// Kernels that move one cached block between its contiguous form and a
// worker's paged KV cache in GPU memory (layout: gpu/paged_kv_layout.h).
// Both run asynchronously on `stream`; the bytes are in place when work
// queued after them on that stream runs. Checked against the CPU reference in
// gpu/paged_kv_reference.h.
//
// Built without CUDA, both validate their arguments and then return
// Unavailable.
#ifndef KVCACHE_GPU_PAGED_KV_H_
#define KVCACHE_GPU_PAGED_KV_H_

#include "absl/status/status.h"
#include "gpu/gpu_stream.h"
#include "gpu/paged_kv_layout.h"

namespace kvcache {

// Queues the copy of `block` (device memory, shape.block_bytes(block_tokens)
// bytes) into the cache's pages at `placement`. InvalidArgument for a bad
// placement; Internal with CUDA's reason when the launch fails.
absl::Status ScatterBlockToPages(const void* block, const PagedKvCache& cache,
                                 const BlockPlacement& placement, GpuStream stream);

// Queues the inverse copy: the cache's pages at `placement` into `block`.
absl::Status GatherBlockFromPages(const PagedKvCache& cache, const BlockPlacement& placement,
                                  void* block, GpuStream stream);

}  // namespace kvcache

#endif  // KVCACHE_GPU_PAGED_KV_H_
