// A batch of memory copies between host and GPU memory, and the one
// transformation every batch gets before it is queued: copies whose source
// and destination both continue where the previous copy's ended are merged,
// so a block laid out in consecutive pages moves as one copy. Plain data,
// no CUDA; the copy engine (gpu/copy_engine.h) queues the result.
#ifndef KVCACHE_GPU_COPY_BATCH_H_
#define KVCACHE_GPU_COPY_BATCH_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace kvcache {

struct CopyOp {
  void* dst = nullptr;
  const void* src = nullptr;
  uint64_t bytes = 0;
};

// `ops` in order with empty copies dropped and each run of adjacent copies
// (dst and src both contiguous with the previous copy's) merged into one.
std::vector<CopyOp> CoalesceCopies(absl::Span<const CopyOp> ops);

}  // namespace kvcache

#endif  // KVCACHE_GPU_COPY_BATCH_H_
