// How one cached block's bytes map onto a vLLM-style paged KV cache.
//
// A cached block holds `block_tokens` consecutive tokens of one sequence, for
// every layer, contiguously:
//
//   block[layer][K=0 | V=1][token][kv_heads][head_dim]      (elem_bytes each)
//
// The worker's cache holds, per layer, one K and one V tensor:
//
//   cache[num_pages][page_tokens][kv_heads][head_dim]
//
// A placement says where the block goes: token t of the block lands in page
// `pages[(page_offset + t) / page_tokens]` at row `(page_offset + t) %
// page_tokens`. `pages` is the slice of the sequence's page table that the
// block spans, so a block need not start on a page boundary.
//
// The same structs describe device caches (gpu/paged_kv.h) and host ones
// (gpu/paged_kv_reference.h, the CPU reference the kernels are checked
// against).
#ifndef KVCACHE_GPU_PAGED_KV_LAYOUT_H_
#define KVCACHE_GPU_PAGED_KV_LAYOUT_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace kvcache {

// Bounds that keep one kernel launch's parameters under 4 KiB.
inline constexpr uint32_t kMaxPagedLayers = 128;
inline constexpr uint32_t kMaxBlockPages = 256;

struct PagedKvShape {
  uint32_t layers = 0;
  uint32_t kv_heads = 0;
  uint32_t head_dim = 0;
  uint32_t elem_bytes = 0;  // 2 for fp16/bf16
  uint32_t page_tokens = 0;
  uint32_t num_pages = 0;  // pages in each K or V tensor

  // Bytes of one token's K (or V) in one layer.
  uint64_t row_bytes() const { return uint64_t{kv_heads} * head_dim * elem_bytes; }
  // Bytes of a contiguous block of `tokens` tokens.
  uint64_t block_bytes(uint32_t tokens) const { return 2ull * layers * tokens * row_bytes(); }
};

// The worker's paged cache: a K and a V tensor per layer.
struct PagedKvCache {
  PagedKvShape shape;
  std::vector<void*> k;  // layers entries, each [num_pages][page_tokens][kv_heads][head_dim]
  std::vector<void*> v;
};

// Where one block goes in (or comes from) the paged cache.
struct BlockPlacement {
  uint32_t block_tokens = 0;
  uint32_t page_offset = 0;    // row of the block's first token in pages[0]
  std::vector<int32_t> pages;  // physical pages, in token order
};

// OK when `placement` fits `cache`: non-zero shape, at most kMaxPagedLayers
// layers and kMaxBlockPages pages, a K and V pointer per layer, page_offset <
// page_tokens, exactly the pages the tokens span, each in [0, num_pages).
// InvalidArgument naming the first problem otherwise.
absl::Status ValidatePlacement(const PagedKvCache& cache, const BlockPlacement& placement);

}  // namespace kvcache

#endif  // KVCACHE_GPU_PAGED_KV_LAYOUT_H_
