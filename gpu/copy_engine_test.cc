// The copy engine on a real GPU: whole blocks and batches of scattered 32 KiB
// fragments round-trip byte-exact through device memory. Without a GPU, only
// the refusal is checked and the rest skips.
#include "gpu/copy_engine.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "gpu/gpu_probe.h"
#include "gpu/gpu_test_util.h"
#include "gpu/pinned_memory.h"
#include "gtest/gtest.h"

#if KVCACHE_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace kvcache {
namespace {

using Direction = CopyEngine::Direction;

TEST(CopyEngineTest, WithoutAGpuCreateSaysWhy) {
  absl::StatusOr<std::unique_ptr<CopyEngine>> engine = CopyEngine::Create({});
  if (ProbeGpu().device_count > 0) {
    ASSERT_TRUE(engine.ok()) << engine.status();
    EXPECT_EQ(CopyEngine::Create({/*device=*/99}).status().code(), absl::StatusCode::kUnavailable);
    return;
  }
  ASSERT_EQ(engine.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(engine.status().message().empty());
}

#if KVCACHE_HAVE_CUDA

void FillRandom(uint8_t* data, uint64_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  for (uint64_t i = 0; i < n; i += 8) {
    const uint64_t word = rng();
    std::memcpy(data + i, &word, std::min<uint64_t>(8, n - i));
  }
}

struct DeviceBuffer {
  explicit DeviceBuffer(uint64_t n) { ok = cudaMalloc(&data, n) == cudaSuccess; }
  ~DeviceBuffer() { cudaFree(data); }
  uint8_t* bytes() const { return static_cast<uint8_t*>(data); }
  void* data = nullptr;
  bool ok = false;
};

TEST(CopyEngineTest, BlocksRoundTripThroughTheGpu) {
  KVCACHE_SKIP_WITHOUT_GPU();
  auto engine = CopyEngine::Create({});
  ASSERT_TRUE(engine.ok()) << engine.status();
  constexpr uint64_t kBlock = 2 << 20;
  auto up = PinnedBuffer::Create(4 * kBlock);
  auto down = PinnedBuffer::Create(4 * kBlock);
  ASSERT_TRUE(up.ok() && down.ok());
  FillRandom((*up)->data(), 4 * kBlock, 7);
  std::memset((*down)->data(), 0xA5, 4 * kBlock);
  DeviceBuffer device(4 * kBlock);
  ASSERT_TRUE(device.ok);

  // Four blocks in reverse device order: four copies, none mergeable.
  std::vector<CopyOp> ops;
  for (uint64_t i = 0; i < 4; ++i) {
    ops.push_back({device.bytes() + (3 - i) * kBlock, (*up)->data() + i * kBlock, kBlock});
  }
  auto uploaded = (*engine)->Submit(Direction::kToDevice, ops);
  ASSERT_TRUE(uploaded.ok()) << uploaded.status();
  // The download waits for the upload through the event, not the host.
  ASSERT_TRUE(uploaded->ChainTo((*engine)->stream(Direction::kToHost)).ok());
  auto downloaded =
      (*engine)->Submit(Direction::kToHost, {{(*down)->data(), device.bytes(), 4 * kBlock}});
  ASSERT_TRUE(downloaded.ok()) << downloaded.status();
  ASSERT_TRUE(downloaded->Wait().ok());
  EXPECT_TRUE(*downloaded->Ready());
  for (uint64_t i = 0; i < 4; ++i) {
    ASSERT_EQ(std::memcmp((*down)->data() + (3 - i) * kBlock, (*up)->data() + i * kBlock, kBlock),
              0)
        << "block " << i;
  }
  std::cout << "batch mode: " << (*engine)->batch_mode() << "\n";
}

TEST(CopyEngineTest, ScatteredFragmentsInOneBatch) {
  KVCACHE_SKIP_WITHOUT_GPU();
  auto engine = CopyEngine::Create({});
  ASSERT_TRUE(engine.ok()) << engine.status();
  constexpr uint64_t kFragment = 32 << 10;
  constexpr uint64_t kCount = 2048;  // two batch calls' worth
  auto host = PinnedBuffer::Create(kCount * kFragment);
  auto back = PinnedBuffer::Create(kCount * kFragment);
  ASSERT_TRUE(host.ok() && back.ok());
  FillRandom((*host)->data(), kCount * kFragment, 11);
  std::memset((*back)->data(), 0xA5, kCount * kFragment);
  DeviceBuffer device(kCount * kFragment);
  ASSERT_TRUE(device.ok);

  // Host fragment i goes to device slot order[i]; back again to slot i.
  std::vector<uint64_t> order(kCount);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(3));
  std::vector<CopyOp> up, down;
  for (uint64_t i = 0; i < kCount; ++i) {
    up.push_back(
        {device.bytes() + order[i] * kFragment, (*host)->data() + i * kFragment, kFragment});
    down.push_back(
        {(*back)->data() + i * kFragment, device.bytes() + order[i] * kFragment, kFragment});
  }
  auto uploaded = (*engine)->Submit(Direction::kToDevice, up);
  ASSERT_TRUE(uploaded.ok()) << uploaded.status();
  ASSERT_TRUE(uploaded->Wait().ok());
  auto downloaded = (*engine)->Submit(Direction::kToHost, down);
  ASSERT_TRUE(downloaded.ok()) << downloaded.status();
  ASSERT_TRUE(downloaded->Wait().ok());
  EXPECT_EQ(std::memcmp((*back)->data(), (*host)->data(), kCount * kFragment), 0);
}

TEST(CopyEngineTest, ABadCopyIsAnErrorAndBatchingStaysAsItWas) {
  KVCACHE_SKIP_WITHOUT_GPU();
  auto engine = CopyEngine::Create({});
  ASSERT_TRUE(engine.ok()) << engine.status();
  auto host = PinnedBuffer::Create(1 << 20);
  ASSERT_TRUE(host.ok());
  DeviceBuffer device(1 << 20);
  ASSERT_TRUE(device.ok);
  const std::string mode = (*engine)->batch_mode();
  const std::vector<CopyOp> ops = {{device.bytes(), (*host)->data(), 4096},
                                   {device.bytes() + 8192, nullptr, 4096}};
  absl::StatusOr<CopyTicket> ticket = (*engine)->Submit(Direction::kToDevice, ops);
  EXPECT_FALSE(ticket.ok() && ticket->Wait().ok());
  EXPECT_EQ((*engine)->batch_mode(), mode);
  // The engine still works afterwards.
  auto fine = (*engine)->Submit(Direction::kToDevice, {ops.data(), 1});
  ASSERT_TRUE(fine.ok()) << fine.status();
  EXPECT_TRUE(fine->Wait().ok());
}

TEST(CopyEngineTest, AnEmptyTicketRefusesPolitely) {
  CopyTicket empty;
  EXPECT_EQ(empty.Wait().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(empty.Ready().status().code(), absl::StatusCode::kFailedPrecondition);
}

#endif  // KVCACHE_HAVE_CUDA

}  // namespace
}  // namespace kvcache
