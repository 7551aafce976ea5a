// Fetching from a real kvstored straight into GPU memory, and storing from
// it: byte-exact through pinned staging, in stream order; fetched blocks
// move whole, puts of blocks bigger than the staging buffer in pieces. Where there is no GPU,
// checks that the transfer says why and skips the rest.
#include <cstring>

#include "client/gpu_transfer.h"
#include "gpu/gpu_probe.h"
#include "gtest/gtest.h"
#include "tests/daemon_test.h"
#include "tests/test_blocks.h"

#if KVCACHE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "tests/device_bytes.h"
#endif

namespace kvcache {
namespace {

class E2eGpuTransferTest : public DaemonTest {
 protected:
  void SetUp() override { StartDaemon({"--host_capacity=64MiB", "--page_size=256KiB"}); }

  const std::string ns_ = TestSchema().NamespaceName();
};

TEST_F(E2eGpuTransferTest, WithoutAGpuTheTransferSaysWhy) {
  std::unique_ptr<Client> client = *Client::Create(TestClientOptions(daemon_->address()));
  EXPECT_EQ(GpuTransfer::Create(client.get(), {.staging_bytes = 100}).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::unique_ptr<GpuTransfer>> gpu = GpuTransfer::Create(client.get(), {});
  if (ProbeGpu().device_count > 0) {
    EXPECT_TRUE(gpu.ok()) << gpu.status();
    return;
  }
  EXPECT_EQ(gpu.status().code(), absl::StatusCode::kUnavailable);
  GTEST_SKIP() << "no GPU here (" << gpu.status().message() << ")";
}

#if KVCACHE_HAVE_CUDA

TEST_F(E2eGpuTransferTest, FetchedBlocksLandInDeviceMemoryInStreamOrder) {
  if (ProbeGpu().device_count == 0) GTEST_SKIP() << "no GPU here: " << ProbeGpu().detail;
  std::unique_ptr<Client> client = *Client::Create(TestClientOptions(daemon_->address()));
  // 4 MiB of staging: 2 MiB slots, so the chain takes three rounds through
  // both slots, and the 2 MiB block fills one exactly.
  auto gpu = GpuTransfer::Create(client.get(), {.staging_bytes = 4 << 20});
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  const std::vector<BlockKey> chain = TestChain(1, 6);
  const std::vector<size_t> sizes = {300000, 65536, 2 << 20, 4096, 500000, 123};
  std::vector<PutBlock> puts;
  for (size_t i = 0; i < chain.size(); ++i)
    puts.push_back({chain[i], PayloadFor(chain[i], sizes[i])});
  ASSERT_TRUE(client->Put(ns_, BlockKey(), puts).ok());

  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  std::vector<std::unique_ptr<DeviceBytes>> dests;
  std::vector<DeviceFetchTarget> targets;
  for (size_t i = 0; i < chain.size(); ++i) {
    dests.push_back(std::make_unique<DeviceBytes>(sizes[i]));
    ASSERT_TRUE(dests.back()->ok);
    targets.push_back({chain[i], dests.back()->data, sizes[i]});
  }
  FetchResult result = (*gpu)->FetchToDevice(ns_, targets, stream);
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.blocks, chain.size());
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  for (size_t i = 0; i < chain.size(); ++i) {
    EXPECT_TRUE(dests[i]->Read() == puts[i].payload) << "block " << i;
  }

  // A range of a block, and a chain that stops at a miss.
  DeviceBytes range(1000);
  ASSERT_TRUE(range.ok);
  std::vector<DeviceFetchTarget> partial = {{chain[2], range.data, 1000, 1 << 20}};
  ASSERT_EQ((*gpu)->FetchToDevice(ns_, partial, stream).blocks, 1u);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(range.Read(), puts[2].payload.substr(1 << 20, 1000));
  // A target bigger than a slot would move in unverified ranges: refused,
  // and its destination untouched.
  DeviceBytes too_big((2 << 20) + 1);
  ASSERT_TRUE(too_big.ok);
  std::vector<DeviceFetchTarget> oversized = {{chain[2], too_big.data, (2 << 20) + 1}};
  FetchResult refused = (*gpu)->FetchToDevice(ns_, oversized, stream);
  EXPECT_EQ(refused.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.blocks, 0u);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(too_big.Read(), std::string((2 << 20) + 1, '\xA5'));
  const BlockKey missing = TestChain(99, 1)[0];
  DeviceBytes after_miss(4096);
  std::vector<DeviceFetchTarget> stops = {{chain[3], dests[3]->data, sizes[3]},
                                          {missing, after_miss.data, 4096}};
  EXPECT_EQ((*gpu)->FetchToDevice(ns_, stops, stream).blocks, 1u);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(after_miss.Read(), std::string(4096, '\xA5'));
  cudaStreamDestroy(stream);
}

TEST_F(E2eGpuTransferTest, BlocksPutFromDeviceMemoryComeBackExact) {
  if (ProbeGpu().device_count == 0) GTEST_SKIP() << "no GPU here: " << ProbeGpu().detail;
  std::unique_ptr<Client> client = *Client::Create(TestClientOptions(daemon_->address()));
  auto gpu = GpuTransfer::Create(client.get(), {.staging_bytes = 1 << 20});
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  const std::vector<BlockKey> chain = TestChain(2, 3);
  const std::vector<size_t> sizes = {70000, 3 << 20, 9};
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  std::vector<std::unique_ptr<DeviceBytes>> sources;
  std::vector<DevicePutBlock> blocks;
  for (size_t i = 0; i < chain.size(); ++i) {
    sources.push_back(std::make_unique<DeviceBytes>(sizes[i]));
    const std::string payload = PayloadFor(chain[i], sizes[i]);
    // Written on the worker's stream: the put must wait for it.
    ASSERT_EQ(
        cudaMemcpyAsync(sources[i]->data, payload.data(), sizes[i], cudaMemcpyHostToDevice, stream),
        cudaSuccess);
    blocks.push_back({chain[i], sources[i]->data, sizes[i]});
  }
  auto outcomes = (*gpu)->PutFromDevice(ns_, BlockKey(), blocks, stream);
  ASSERT_TRUE(outcomes.ok()) << outcomes.status();
  ASSERT_EQ(outcomes->size(), chain.size());
  for (size_t i = 0; i < chain.size(); ++i) {
    std::string back(sizes[i], '\0');
    FetchTarget target{chain[i], absl::MakeSpan(reinterpret_cast<uint8_t*>(back.data()), sizes[i])};
    ASSERT_EQ(client->Fetch(ns_, {&target, 1}).blocks, 1u) << "block " << i;
    EXPECT_TRUE(back == PayloadFor(chain[i], sizes[i])) << "block " << i;
  }
  cudaStreamDestroy(stream);
}

#endif  // KVCACHE_HAVE_CUDA

}  // namespace
}  // namespace kvcache
