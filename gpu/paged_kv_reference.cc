#include "gpu/paged_kv_reference.h"

#include <cstring>

namespace kvcache {
namespace {

// Calls copy(block_element, cache_element) for every element of the block.
template <typename Copy>
absl::Status ForEachElement(const PagedKvCache& cache, const BlockPlacement& placement, char* block,
                            Copy copy) {
  if (absl::Status valid = ValidatePlacement(cache, placement); !valid.ok()) return valid;
  const PagedKvShape& s = cache.shape;
  const uint64_t e = s.elem_bytes;
  for (uint64_t layer = 0; layer < s.layers; ++layer) {
    for (uint64_t kv = 0; kv < 2; ++kv) {
      char* tensor = static_cast<char*>(kv == 0 ? cache.k[layer] : cache.v[layer]);
      for (uint64_t t = 0; t < placement.block_tokens; ++t) {
        const uint64_t slot = placement.page_offset + t;
        const uint64_t page = static_cast<uint64_t>(placement.pages[slot / s.page_tokens]);
        const uint64_t row = slot % s.page_tokens;
        for (uint64_t h = 0; h < s.kv_heads; ++h) {
          for (uint64_t d = 0; d < s.head_dim; ++d) {
            const uint64_t block_index =
                (((layer * 2 + kv) * placement.block_tokens + t) * s.kv_heads + h) * s.head_dim + d;
            const uint64_t cache_index =
                ((page * s.page_tokens + row) * s.kv_heads + h) * s.head_dim + d;
            copy(block + block_index * e, tensor + cache_index * e, e);
          }
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ScatterBlockOnHost(const void* block, const PagedKvCache& cache,
                                const BlockPlacement& placement) {
  return ForEachElement(cache, placement, static_cast<char*>(const_cast<void*>(block)),
                        [](char* b, char* c, uint64_t n) { std::memcpy(c, b, n); });
}

absl::Status GatherBlockOnHost(const PagedKvCache& cache, const BlockPlacement& placement,
                               void* block) {
  return ForEachElement(cache, placement, static_cast<char*>(block),
                        [](char* b, char* c, uint64_t n) { std::memcpy(b, c, n); });
}

}  // namespace kvcache
