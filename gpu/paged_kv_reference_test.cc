#include "gpu/paged_kv_reference.h"

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

constexpr unsigned char kPoison = 0xA5;

// Host tensors for a cache, every byte poisoned.
struct HostCache {
  explicit HostCache(const PagedKvShape& shape) {
    cache.shape = shape;
    const uint64_t bytes = uint64_t{shape.num_pages} * shape.page_tokens * shape.row_bytes();
    for (uint32_t layer = 0; layer < shape.layers; ++layer) {
      storage.emplace_back(bytes, kPoison);
      cache.k.push_back(storage.back().data());
      storage.emplace_back(bytes, kPoison);
      cache.v.push_back(storage.back().data());
    }
  }
  std::vector<std::vector<unsigned char>> storage;  // moves keep each data() in place
  PagedKvCache cache;
};

std::vector<unsigned char> RandomBytes(uint64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<unsigned char> out(n);
  for (auto& b : out) b = static_cast<unsigned char>(rng());
  return out;
}

PagedKvShape SmallShape() {
  PagedKvShape s;
  s.layers = 2;
  s.kv_heads = 2;
  s.head_dim = 3;
  s.elem_bytes = 2;
  s.page_tokens = 4;
  s.num_pages = 6;
  return s;
}

TEST(PagedKvReferenceTest, ElementsLandWhereTheLayoutSays) {
  PagedKvShape s = SmallShape();
  HostCache host(s);
  BlockPlacement at{/*block_tokens=*/5, /*page_offset=*/2, /*pages=*/{4, 1}};
  // Element value = its index in the block, as a 16-bit number.
  std::vector<uint16_t> block(s.block_bytes(5) / 2);
  for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<uint16_t>(i);
  ASSERT_TRUE(ScatterBlockOnHost(block.data(), host.cache, at).ok());

  // Layer 1, V, token 3, head 1, dim 2: block index ((1*2+1)*5+3)*2*3 + 1*3 + 2 = 113.
  // Token 3 is slot 5: page pages[1] = 1, row 1; cache index ((1*4+1)*2+1)*3+2 = 35.
  const auto* v1 = static_cast<const uint16_t*>(host.cache.v[1]);
  EXPECT_EQ(v1[35], 113);
  // Layer 0, K, token 0 is slot 2: page 4, row 2; head 0 dim 0 -> ((4*4+2)*2)*3 = 108.
  EXPECT_EQ(static_cast<const uint16_t*>(host.cache.k[0])[108], 0);
}

TEST(PagedKvReferenceTest, RoundTripTouchesOnlyThePlacedRows) {
  PagedKvShape s = SmallShape();
  HostCache host(s);
  BlockPlacement at{/*block_tokens=*/7, /*page_offset=*/3, /*pages=*/{5, 0, 2}};
  const std::vector<unsigned char> block = RandomBytes(s.block_bytes(7), 1);
  ASSERT_TRUE(ScatterBlockOnHost(block.data(), host.cache, at).ok());

  // Rows written: page 5 row 3, page 0 rows 0-3, page 2 rows 0-1. All else poisoned.
  const uint64_t row = s.row_bytes();
  auto written = [&](uint64_t page, uint64_t r) {
    return (page == 5 && r == 3) || page == 0 || (page == 2 && r < 2);
  };
  for (const auto& tensor : host.storage) {
    for (uint64_t page = 0; page < s.num_pages; ++page) {
      for (uint64_t r = 0; r < s.page_tokens; ++r) {
        if (written(page, r)) continue;
        for (uint64_t b = 0; b < row; ++b) {
          ASSERT_EQ(tensor[(page * s.page_tokens + r) * row + b], kPoison)
              << "page " << page << " row " << r;
        }
      }
    }
  }
  std::vector<unsigned char> back(block.size(), kPoison);
  ASSERT_TRUE(GatherBlockOnHost(host.cache, at, back.data()).ok());
  EXPECT_EQ(back, block);
}

TEST(PagedKvReferenceTest, BadPlacementsAreRejectedByName) {
  PagedKvShape s = SmallShape();
  HostCache host(s);
  std::vector<unsigned char> block(s.block_bytes(8));
  auto message = [&](const PagedKvCache& cache, const BlockPlacement& at) {
    absl::Status status = ScatterBlockOnHost(block.data(), cache, at);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    return std::string(status.message());
  };
  EXPECT_NE(message(host.cache, {8, 0, {0}}).find("spans 2 pages"), std::string::npos);
  EXPECT_NE(message(host.cache, {4, 4, {0, 1}}).find("page_offset"), std::string::npos);
  EXPECT_NE(message(host.cache, {4, 0, {6}}).find("outside"), std::string::npos);
  EXPECT_NE(message(host.cache, {4, 0, {-1}}).find("outside"), std::string::npos);
  EXPECT_NE(message(host.cache, {0, 0, {}}).find("no tokens"), std::string::npos);

  PagedKvCache missing = host.cache;
  missing.v.pop_back();
  EXPECT_NE(message(missing, {4, 0, {0}}).find("K and V"), std::string::npos);
  PagedKvCache null_tensor = host.cache;
  null_tensor.k[1] = nullptr;
  EXPECT_NE(message(null_tensor, {4, 0, {0}}).find("null"), std::string::npos);
  PagedKvCache deep = host.cache;
  deep.shape.layers = kMaxPagedLayers + 1;
  EXPECT_NE(message(deep, {4, 0, {0}}).find("layers"), std::string::npos);
  // Nothing was written by any rejected call.
  for (const auto& tensor : host.storage) {
    for (unsigned char b : tensor) ASSERT_EQ(b, kPoison);
  }
}

}  // namespace
}  // namespace kvcache
