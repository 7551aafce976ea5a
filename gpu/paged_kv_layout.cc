#include "gpu/paged_kv_layout.h"

#include "absl/strings/str_cat.h"

namespace kvcache {

absl::Status ValidatePlacement(const PagedKvCache& cache, const BlockPlacement& placement) {
  const PagedKvShape& s = cache.shape;
  if (s.layers == 0 || s.kv_heads == 0 || s.head_dim == 0 || s.elem_bytes == 0 ||
      s.page_tokens == 0 || s.num_pages == 0) {
    return absl::InvalidArgumentError("paged KV shape has a zero dimension");
  }
  if (s.layers > kMaxPagedLayers) {
    return absl::InvalidArgumentError(
        absl::StrCat("paged KV cache has ", s.layers, " layers; at most ", kMaxPagedLayers));
  }
  if (cache.k.size() != s.layers || cache.v.size() != s.layers) {
    return absl::InvalidArgumentError(absl::StrCat("paged KV cache needs ", s.layers,
                                                   " K and V tensors; has ", cache.k.size(),
                                                   " and ", cache.v.size()));
  }
  for (uint32_t layer = 0; layer < s.layers; ++layer) {
    if (cache.k[layer] == nullptr || cache.v[layer] == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " has a null tensor"));
    }
  }
  if (placement.block_tokens == 0) return absl::InvalidArgumentError("block has no tokens");
  if (placement.page_offset >= s.page_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("page_offset ", placement.page_offset,
                                                   " is not below page_tokens ", s.page_tokens));
  }
  const uint64_t spanned =
      (uint64_t{placement.page_offset} + placement.block_tokens + s.page_tokens - 1) /
      s.page_tokens;
  if (placement.pages.size() != spanned) {
    return absl::InvalidArgumentError(
        absl::StrCat("block spans ", spanned, " pages; placement lists ", placement.pages.size()));
  }
  if (spanned > kMaxBlockPages) {
    return absl::InvalidArgumentError(
        absl::StrCat("block spans ", spanned, " pages; at most ", kMaxBlockPages));
  }
  for (int32_t page : placement.pages) {
    if (page < 0 || static_cast<uint32_t>(page) >= s.num_pages) {
      return absl::InvalidArgumentError(
          absl::StrCat("page ", page, " is outside the cache's ", s.num_pages, " pages"));
    }
  }
  return absl::OkStatus();
}

}  // namespace kvcache
