// Same-host GPU leases end to end, against a real kvstored. With its GPU
// tier in host memory (--gpu_in_host_memory, runs anywhere), the welcome
// shares the pool as a memfd and the test reads leased blocks through it:
// a lease names exactly the bytes of the leading blocks that live on the
// GPU tier, and their pages stay put until it is released or expires, even
// after the blocks are evicted and the pool refilled. On a GPU, a worker's
// GpuTransfer copies such blocks device to device through CUDA IPC.
#include <cstring>
#include <string>
#include <vector>

#include "client/gpu_transfer.h"
#include "client/local_path_client.h"
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

constexpr uint64_t kPage = 64 << 10;

const std::string& Ns() {
  static const std::string ns = TestSchema().NamespaceName();
  return ns;
}

// Sizes that start, end and cross GPU pages; then one bigger than the whole
// GPU tier, which is never admitted and so stays on the host.
const std::vector<size_t>& Sizes() {
  static const std::vector<size_t> sizes = {kPage, 3 * kPage + 17, 100, 2 * kPage - 1, 5 << 20};
  return sizes;
}

v1::FetchRequest LeaseRequest(const std::vector<BlockKey>& keys) {
  v1::FetchRequest request;
  request.set_namespace_(Ns());
  for (const BlockKey& key : keys) request.add_items()->set_key(key.ToBytes());
  return request;
}

class E2eGpuLeaseTest : public DaemonTest {
 protected:
  // A 16 MiB host tier under a 1 MiB GPU tier of 64 KiB pages.
  void Start(std::vector<std::string> flags) {
    for (const char* f : {"--host_capacity=16MiB", "--page_size=64KiB", "--gpu_in_host_memory",
                          "--gpu_capacity=1MiB", "--gpu_page_size=64KiB"}) {
      flags.push_back(f);
    }
    StartDaemon(flags);
    ASSERT_FALSE(hello_.local_socket().empty());
    auto local =
        LocalPathClient::Connect(hello_.local_socket(), hello_.instance_id(), {});
    ASSERT_TRUE(local.ok()) << local.status();
    local_ = std::move(*local);
    auto client = Client::Create(TestClientOptions(daemon_->address()));
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  // Puts a chain of Sizes() and waits until all but the last landed.
  std::vector<BlockKey> PutLanded(uint32_t seed) {
    const std::vector<BlockKey> chain = TestChain(seed, Sizes().size());
    std::vector<PutBlock> puts;
    for (size_t i = 0; i < chain.size(); ++i)
      puts.push_back({chain[i], PayloadFor(chain[i], Sizes()[i])});
    const uint64_t landed = Stats().gpu_landed_blocks() + chain.size() - 1;
    auto put = client_->Put(Ns(), BlockKey(), puts);
    EXPECT_TRUE(put.ok()) << put.status();
    v1::StatsResponse s = AwaitStats(*stub_, [&](const v1::StatsResponse& s) {
      return s.gpu_landed_blocks() == landed && s.gpu_not_admitted() > 0;
    });
    EXPECT_EQ(s.gpu_landed_blocks(), landed);
    EXPECT_GT(s.gpu_not_admitted(), 0u);
    return chain;
  }

  // The bytes a leased item names, read through the pool's mapping.
  std::string Read(const v1::LeasedItem& item) {
    std::string bytes;
    for (const v1::ArenaExtent& e : item.extents()) {
      bytes.append(reinterpret_cast<const char*>(local_->gpu_pool()->host_mapping) + e.offset(),
                   e.length());
    }
    return bytes;
  }

  uint64_t GpuUsed() { return Stats().tiers(0).used_bytes(); }

  void EvictNamespace() {
    grpc::ClientContext ctx;
    v1::EvictRequest req;
    req.set_namespace_(Ns());
    v1::EvictResponse resp;
    ASSERT_TRUE(stub_->Evict(&ctx, req, &resp).ok());
  }

  std::unique_ptr<LocalPathClient> local_;
  std::unique_ptr<Client> client_;
};

TEST_F(E2eGpuLeaseTest, ALeaseNamesTheBytesOfTheLeadingBlocksOnTheGpu) {
  Start({});
  const LocalPathClient::GpuPool* pool = local_->gpu_pool();
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(pool->bytes, 1u << 20);
  EXPECT_EQ(pool->page_bytes, kPage);
  EXPECT_TRUE(pool->ipc_handle.empty());  // in host memory: a memfd instead
  ASSERT_NE(pool->host_mapping, nullptr);

  const std::vector<BlockKey> chain = PutLanded(4100);
  v1::FetchRequest request = LeaseRequest(chain);
  request.mutable_items(1)->set_offset(kPage - 5);  // a range across a page end
  request.mutable_items(1)->set_length(kPage + 10);
  absl::StatusOr<LocalPathClient::GpuLease> lease = local_->LeaseGpuBlocks(request);
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_NE(lease->lease_id, 0u);
  // The last block stayed on the host: the run on the GPU ends before it.
  ASSERT_EQ(lease->items.size(), chain.size() - 1);
  for (size_t i = 0; i < lease->items.size(); ++i) {
    const v1::LeasedItem& item = lease->items[i];
    EXPECT_EQ(item.item_index(), i);
    EXPECT_EQ(item.tier(), v1::TIER_GPU);
    EXPECT_EQ(item.block_size(), Sizes()[i]);
    const std::string want = PayloadFor(chain[i], Sizes()[i]);
    EXPECT_EQ(Read(item), i == 1 ? want.substr(kPage - 5, kPage + 10) : want) << "block " << i;
  }
  local_->ReleaseLease(lease->lease_id);
  v1::StatsResponse s = Stats();
  EXPECT_EQ(s.gpu_leased_blocks(), chain.size() - 1);
  EXPECT_EQ(s.tiers(0).hits(), chain.size() - 1);

  // The host block is fetched the ordinary way; a lease on it finds nothing.
  EXPECT_EQ(local_->LeaseGpuBlocks(LeaseRequest({chain.back()})).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(local_->LeaseGpuBlocks(LeaseRequest(TestChain(4199, 1))).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(local_->LeaseGpuBlocks(LeaseRequest({})).status().code(),
            absl::StatusCode::kInvalidArgument);
  request = LeaseRequest({chain[0]});
  request.mutable_items(0)->set_offset(Sizes()[0] + 1);
  EXPECT_EQ(local_->LeaseGpuBlocks(request).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(E2eGpuLeaseTest, LeasedPagesOutliveEvictionUntilReleased) {
  Start({});
  const std::vector<BlockKey> chain = PutLanded(4200);
  absl::StatusOr<LocalPathClient::GpuLease> lease = local_->LeaseGpuBlocks(LeaseRequest(chain));
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_EQ(lease->items.size(), chain.size() - 1);
  const uint64_t leased_bytes = GpuUsed();
  ASSERT_GT(leased_bytes, 0u);

  // Evicted, the blocks are gone from the index, but not their pages.
  EvictNamespace();
  v1::StatsResponse s = Stats();
  EXPECT_EQ(s.tiers(0).blocks(), 0u);
  EXPECT_EQ(s.tiers(0).used_bytes(), leased_bytes);
  // Other puts fill the rest of the tier (and push it into demotion) and
  // never touch the leased pages.
  for (uint32_t seed = 4300; seed < 4306; ++seed) {
    auto put = client_->Put(Ns(), BlockKey(), TestPayloads(TestChain(seed, 2), kPage));
    ASSERT_TRUE(put.ok()) << put.status();
  }
  s = AwaitStats(*stub_, [](const v1::StatsResponse& s) { return s.gpu_demoted_blocks() > 0; });
  EXPECT_GT(s.gpu_demoted_blocks(), 0u);
  for (size_t i = 0; i < lease->items.size(); ++i) {
    EXPECT_EQ(Read(lease->items[i]), PayloadFor(chain[i], Sizes()[i])) << "block " << i;
  }

  // Released, the pages go back.
  EvictNamespace();
  local_->ReleaseLease(lease->lease_id);
  s = AwaitStats(*stub_, [](const v1::StatsResponse& s) { return s.tiers(0).used_bytes() == 0; });
  EXPECT_EQ(s.tiers(0).used_bytes(), 0u);
}

TEST_F(E2eGpuLeaseTest, AnExpiredLeaseGivesItsPagesBack) {
  Start({"--lease_ttl_s=1"});
  const std::vector<BlockKey> chain = PutLanded(4400);
  ASSERT_TRUE(local_->LeaseGpuBlocks(LeaseRequest(chain)).ok());
  EvictNamespace();
  EXPECT_GT(GpuUsed(), 0u);
  // Never released: a worker that died, or hung.
  v1::StatsResponse s =
      AwaitStats(*stub_, [](const v1::StatsResponse& s) { return s.tiers(0).used_bytes() == 0; });
  EXPECT_EQ(s.tiers(0).used_bytes(), 0u);
}

TEST_F(E2eGpuLeaseTest, WithoutAGpuTierThereIsNoPoolToLease) {
  StartDaemon({"--host_capacity=16MiB", "--page_size=64KiB", "--gpu_capacity=0"});
  auto local =
      LocalPathClient::Connect(hello_.local_socket(), hello_.instance_id(), {});
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ((*local)->gpu_pool(), nullptr);
  EXPECT_EQ((*local)->LeaseGpuBlocks(LeaseRequest(TestChain(4500, 1))).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

#if KVCACHE_HAVE_CUDA

// A worker on the daemon's GPU: the blocks in the daemon's GPU pages come
// device to device, the one left on the host through staging, all exact.
TEST_F(E2eGpuLeaseTest, AWorkerOnTheSameGpuCopiesDeviceToDevice) {
  if (ProbeGpu().device_count == 0) GTEST_SKIP() << "no GPU here: " << ProbeGpu().detail;
  StartDaemon({"--host_capacity=64MiB", "--page_size=64KiB", "--gpu_capacity=1MiB",
               "--gpu_page_size=64KiB", "--gpu_index=0"});
  ASSERT_TRUE(Stats().tiers(0).enabled()) << Stats().tiers(0).detail();
  auto client = Client::Create(TestClientOptions(daemon_->address()));
  ASSERT_TRUE(client.ok());
  client_ = std::move(*client);
  const std::vector<BlockKey> chain = PutLanded(4600);
  auto gpu = GpuTransfer::Create(client_.get(), {.device = 0, .staging_bytes = 16 << 20});
  ASSERT_TRUE(gpu.ok()) << gpu.status();

  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  std::vector<std::unique_ptr<DeviceBytes>> dests;
  std::vector<DeviceFetchTarget> targets;
  for (size_t i = 0; i < chain.size(); ++i) {
    dests.push_back(std::make_unique<DeviceBytes>(Sizes()[i]));
    ASSERT_TRUE(dests.back()->ok);
    targets.push_back({chain[i], dests.back()->data, Sizes()[i]});
  }
  FetchResult got = (*gpu)->FetchToDevice(Ns(), targets, stream);
  ASSERT_TRUE(got.status.ok()) << got.status;
  ASSERT_EQ(got.blocks, chain.size());
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  for (size_t i = 0; i < chain.size(); ++i) {
    EXPECT_EQ(got.tiers[i], i + 1 < chain.size() ? v1::TIER_GPU : v1::TIER_HOST) << i;
    EXPECT_EQ(dests[i]->Read(), PayloadFor(chain[i], Sizes()[i])) << "block " << i;
  }
  EXPECT_EQ((*gpu)->gpu_leased_blocks(), chain.size() - 1);
  EXPECT_EQ(Stats().gpu_leased_blocks(), chain.size() - 1);
  gpu->reset();  // releases the leases
  cudaStreamDestroy(stream);
  EXPECT_EQ(AwaitNothingPinnedOrStaged(*stub_).pinned_bytes(), 0u);
}

#endif

}  // namespace
}  // namespace kvcache
