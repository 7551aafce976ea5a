// The paged KV kernels against the CPU reference, on a real GPU: random
// blocks, poisoned caches and outputs, byte-for-byte comparison of every
// tensor. Skips where there is no GPU.
#include "gpu/paged_kv.h"

#include <cstdint>
#include <random>
#include <vector>

#include "gpu/gpu_test_util.h"
#include "gpu/paged_kv_reference.h"
#include "gtest/gtest.h"

#if KVCACHE_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace kvcache {
namespace {

#if KVCACHE_HAVE_CUDA

constexpr unsigned char kPoison = 0xA5;

#define ASSERT_CUDA(expr)                                     \
  do {                                                        \
    const cudaError_t err_ = (expr);                          \
    ASSERT_EQ(err_, cudaSuccess) << cudaGetErrorString(err_); \
  } while (0)

std::vector<unsigned char> RandomBytes(uint64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<unsigned char> out(n);
  for (auto& b : out) b = static_cast<unsigned char>(rng());
  return out;
}

// A cache with poisoned tensors on the device and a mirror on the host.
class Caches {
 public:
  explicit Caches(const PagedKvShape& shape)
      : tensor_bytes_(uint64_t{shape.num_pages} * shape.page_tokens * shape.row_bytes()) {
    device.shape = shape;
    host.shape = shape;
    for (uint32_t i = 0; i < 2 * shape.layers; ++i) {
      void* d = nullptr;
      ok_ = ok_ && cudaMalloc(&d, tensor_bytes_) == cudaSuccess &&
            cudaMemset(d, kPoison, tensor_bytes_) == cudaSuccess;
      device_tensors_.push_back(d);
      host_tensors_.emplace_back(tensor_bytes_, kPoison);
      (i % 2 == 0 ? device.k : device.v).push_back(d);
      (i % 2 == 0 ? host.k : host.v).push_back(host_tensors_.back().data());
    }
  }
  ~Caches() {
    for (void* d : device_tensors_) cudaFree(d);
  }
  bool ok() const { return ok_; }

  // Every device tensor equals its host mirror.
  void ExpectSame() const {
    std::vector<unsigned char> copy(tensor_bytes_);
    for (size_t i = 0; i < device_tensors_.size(); ++i) {
      ASSERT_CUDA(
          cudaMemcpy(copy.data(), device_tensors_[i], tensor_bytes_, cudaMemcpyDeviceToHost));
      ASSERT_TRUE(copy == host_tensors_[i]) << "tensor " << i << " differs from the reference";
    }
  }

  PagedKvCache device;
  PagedKvCache host;

 private:
  const uint64_t tensor_bytes_;
  bool ok_ = true;
  std::vector<void*> device_tensors_;
  std::vector<std::vector<unsigned char>> host_tensors_;
};

struct Case {
  PagedKvShape shape;
  BlockPlacement at;
  uint32_t block_misalign;  // bytes added to the device block's address
};

void RunCase(const Case& c, uint32_t seed) {
  Caches caches(c.shape);
  ASSERT_TRUE(caches.ok());
  const uint64_t bytes = c.shape.block_bytes(c.at.block_tokens);
  const std::vector<unsigned char> block = RandomBytes(bytes, seed);
  void* allocation = nullptr;
  ASSERT_CUDA(cudaMalloc(&allocation, bytes + 16));
  char* device_block = static_cast<char*>(allocation);
  char* placed = device_block + c.block_misalign;
  ASSERT_CUDA(cudaMemcpy(placed, block.data(), bytes, cudaMemcpyHostToDevice));
  cudaStream_t stream;
  ASSERT_CUDA(cudaStreamCreate(&stream));

  // Scatter: the device pages must equal the reference's, poison included.
  ASSERT_TRUE(ScatterBlockToPages(placed, caches.device, c.at, stream).ok());
  ASSERT_CUDA(cudaStreamSynchronize(stream));
  ASSERT_TRUE(ScatterBlockOnHost(block.data(), caches.host, c.at).ok());
  caches.ExpectSame();

  // Gather into a poisoned block: exactly the original bytes come back.
  ASSERT_CUDA(cudaMemset(device_block, kPoison, bytes + 16));
  ASSERT_TRUE(GatherBlockFromPages(caches.device, c.at, placed, stream).ok());
  ASSERT_CUDA(cudaStreamSynchronize(stream));
  std::vector<unsigned char> back(bytes + 16);
  ASSERT_CUDA(cudaMemcpy(back.data(), device_block, bytes + 16, cudaMemcpyDeviceToHost));
  for (uint32_t i = 0; i < c.block_misalign; ++i) EXPECT_EQ(back[i], kPoison);
  EXPECT_TRUE(std::equal(block.begin(), block.end(), back.begin() + c.block_misalign));
  for (uint64_t i = c.block_misalign + bytes; i < bytes + 16; ++i) EXPECT_EQ(back[i], kPoison);
  cudaStreamDestroy(stream);
  cudaFree(device_block);
}

TEST(PagedKvTest, KernelsMatchTheReference) {
  KVCACHE_SKIP_WITHOUT_GPU();
  // Llama-like rows (8 heads x 128 dims x bf16 = 2 KiB, 16-byte words),
  // unaligned start in the first page, pages out of order.
  ASSERT_NO_FATAL_FAILURE(RunCase(
      {{/*layers=*/4, 8, 128, 2, /*page_tokens=*/16, /*num_pages=*/12}, {40, 5, {7, 2, 11}}, 0},
      1));
  // Block equal to one page.
  ASSERT_NO_FATAL_FAILURE(RunCase({{2, 4, 64, 2, 16, 4}, {16, 0, {3}}, 0}, 2));
  // Odd rows (3 heads x 5 dims x 2 bytes = 30 bytes): 2-byte words.
  ASSERT_NO_FATAL_FAILURE(RunCase({{3, 3, 5, 2, 4, 9}, {13, 1, {8, 0, 4, 6}}, 0}, 3));
  // A 1-byte-misaligned block forces byte copies.
  ASSERT_NO_FATAL_FAILURE(RunCase({{2, 8, 128, 2, 16, 8}, {32, 0, {1, 6}}, 1}, 4));
  // Many layers and a long block.
  ASSERT_NO_FATAL_FAILURE(RunCase({{kMaxPagedLayers, 2, 64, 2, 16, 40},
                                   {256, 0, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
                                   0},
                                  5));
}

TEST(PagedKvTest, ABadPlacementLaunchesNothing) {
  KVCACHE_SKIP_WITHOUT_GPU();
  PagedKvShape shape{2, 2, 8, 2, 4, 4};
  Caches caches(shape);
  ASSERT_TRUE(caches.ok());
  void* block = nullptr;
  ASSERT_CUDA(cudaMalloc(&block, shape.block_bytes(4)));
  EXPECT_EQ(ScatterBlockToPages(block, caches.device, {4, 0, {9}}, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ScatterBlockToPages(nullptr, caches.device, {4, 0, {1}}, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_CUDA(cudaDeviceSynchronize());
  caches.ExpectSame();  // still all poison
  cudaFree(block);
}

#else  // !KVCACHE_HAVE_CUDA

TEST(PagedKvTest, BuiltWithoutCudaSaysSo) {
  PagedKvShape shape{1, 1, 8, 2, 4, 1};
  std::vector<unsigned char> k(64), v(64), block(shape.block_bytes(4));
  PagedKvCache cache{shape, {k.data()}, {v.data()}};
  EXPECT_EQ(ScatterBlockToPages(block.data(), cache, {4, 0, {0}}, nullptr).code(),
            absl::StatusCode::kUnavailable);
  GTEST_SKIP() << "built without CUDA: the kernels are checked where CUDA and a GPU are";
}

#endif

}  // namespace
}  // namespace kvcache
