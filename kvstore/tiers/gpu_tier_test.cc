// The GPU tier's movement rules, through the BlockStore that runs them.
// Each case runs twice: on a page pool in host memory (everywhere), and on
// the real GPU (skipped, saying why, where there is none).
#include "kvstore/tiers/gpu_tier.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gpu/gpu_test_util.h"
#include "gtest/gtest.h"
#include "kvstore/store/block_store.h"
#include "kvstore/store/store_test_blocks.h"

namespace kvcache {
namespace {

constexpr uint64_t kPage = 64 << 10;
constexpr uint64_t kBlock = kPage - 100;  // one page on either side

BlockKey Key(int i) { return TestKey(i); }
std::vector<uint8_t> Payload(int i) { return TestPayload(i, kBlock); }

enum class Backing { kHostMemory, kGpu };

class GpuTierTest : public ::testing::TestWithParam<Backing> {
 protected:
  void SetUp() override {
    if (GetParam() == Backing::kGpu) KVCACHE_SKIP_WITHOUT_GPU();
  }

  // A 16-page host arena (no NVMe) under a GPU pool of `gpu_pages` pages.
  void Open(uint32_t gpu_pages, double high = 0.9, double low = 0.5, bool background = false) {
    store_.reset();
    BlockStore::Options o;
    o.arena.capacity_bytes = 16 * kPage;
    o.arena.page_bytes = kPage;
    o.arena.prefault = false;
    o.arena.pin_for_gpu = GetParam() == Backing::kGpu;
    o.index_shards = 4;
    GpuTier::Options gpu;
    gpu.pool = {0, gpu_pages * kPage, static_cast<uint32_t>(kPage)};
    gpu.high = high;
    gpu.low = low;
    gpu.move_in_background = background;
    o.gpu = gpu;
    o.gpu_in_host_memory = GetParam() == Backing::kHostMemory;
    absl::StatusOr<std::unique_ptr<BlockStore>> s = BlockStore::Create(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    ASSERT_NE(store_->gpu(), nullptr) << store_->gpu_unavailable();
    ns_ = *store_->namespaces().Intern("tenant", "ns");
  }

  // Puts block i (a child of block i-1 unless i is a root) as a put does,
  // offering it to the GPU tier only if `offer`.
  void Put(int i, bool root, bool offer = true) {
    StoreTestBlock(*store_, ns_, i, root, Payload(i));
    if (offer && !HasFatalFailure()) store_->BlockStored(ns_, Key(i));
  }

  // True if block i reads back byte-exact; *source says from where.
  bool ReadsBack(int i, ReadSource* source = nullptr) {
    return ReadsBackAs(*store_, ns_, i, Payload(i), source);
  }

  BlockView View(int i) {
    std::optional<BlockView> v = store_->index().Inspect(ns_, Key(i));
    EXPECT_TRUE(v.has_value()) << i;
    return v.value_or(BlockView{});
  }
  GpuTier& gpu() { return *store_->gpu(); }

  std::unique_ptr<BlockStore> store_;
  NamespaceId ns_ = 0;
};

TEST_P(GpuTierTest, PutsLandOnTheGpuAndReadsCopyThemDown) {
  Open(8);
  for (int i = 0; i < 4; ++i) Put(i, i == 0);
  EXPECT_EQ(store_->arena().used_bytes(), 4 * kPage);
  EXPECT_EQ(gpu().MoveOnce(), 4u);
  EXPECT_EQ(gpu().landed_blocks(), 4u);
  EXPECT_EQ(store_->index().device_blocks(), 4u);
  EXPECT_EQ(store_->index().host_blocks(), 0u);
  EXPECT_EQ(store_->arena().used_bytes(), 0u);  // their host pages went
  EXPECT_EQ(gpu().used_bytes(), 4 * kPage);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(View(i).on_gpu && !View(i).on_host) << i;
    ReadSource source = ReadSource::kHost;
    ASSERT_TRUE(ReadsBack(i, &source)) << i;
    EXPECT_EQ(source, ReadSource::kGpu);
    EXPECT_TRUE(View(i).on_gpu && View(i).on_host) << i;  // the GPU copy stays
    ASSERT_TRUE(ReadsBack(i, &source)) << i;
    EXPECT_EQ(source, ReadSource::kHost);
  }
  EXPECT_EQ(gpu().copied_to_host(), 4u);
  std::vector<ChainBlock> chain;
  std::vector<BlockKey> keys = {Key(0), Key(1)};
  EXPECT_EQ(store_->index().LookupChain(ns_, keys, &chain), 2u);
  EXPECT_TRUE(chain[0].on_gpu);
}

TEST_P(GpuTierTest, PressureDemotesTheColdestToHostPages) {
  Open(8, /*high=*/0.9, /*low=*/0.5);
  for (int i = 0; i < 8; ++i) Put(i, i == 0);
  EXPECT_EQ(gpu().MoveOnce(), 8u);  // all land; the pool is full
  EXPECT_EQ(store_->arena().used_bytes(), 0u);
  Put(8, false);
  EXPECT_EQ(gpu().MoveOnce(), 5u);  // demotes 0-3, then block 8 lands
  EXPECT_EQ(gpu().demoted_blocks(), 4u);
  EXPECT_EQ(gpu().landed_blocks(), 9u);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(!View(i).on_gpu && View(i).on_host) << i;
  for (int i = 4; i < 9; ++i) EXPECT_TRUE(View(i).on_gpu && !View(i).on_host) << i;
  for (int i = 0; i < 9; ++i) EXPECT_TRUE(ReadsBack(i)) << i;
  EXPECT_EQ(store_->index().blocks(), 9u);  // nothing was lost on the way
}

TEST_P(GpuTierTest, APutFindingNoGpuPagesStaysOnTheHost) {
  Open(2, /*high=*/0.9, /*low=*/0.5);
  for (int i = 0; i < 3; ++i) Put(i, i == 0);
  EXPECT_EQ(gpu().MoveOnce(), 2u);
  EXPECT_EQ(gpu().not_admitted(), 1u);
  EXPECT_TRUE(View(2).on_host && !View(2).on_gpu);
  EXPECT_TRUE(ReadsBack(2));
}

TEST_P(GpuTierTest, HostBlocksArePromotedAfterRepeatedReadsAndKeepTheirHostCopy) {
  Open(2, /*high=*/0.9, /*low=*/0.4);
  Put(0, true, /*offer=*/false);
  ASSERT_TRUE(ReadsBack(0));  // one hit: not yet
  gpu().MoveOnce();
  EXPECT_FALSE(View(0).on_gpu);
  ASSERT_TRUE(ReadsBack(0));
  EXPECT_EQ(gpu().MoveOnce(), 1u);
  EXPECT_EQ(gpu().promoted_blocks(), 1u);
  EXPECT_TRUE(View(0).on_gpu && View(0).on_host);
  // A promoted copy has a copy below, so pressure frees it without a copy.
  Put(1, false);
  Put(2, false, /*offer=*/false);
  gpu().MoveOnce();  // block 1 lands: the pool is full
  Put(3, false);
  EXPECT_EQ(gpu().MoveOnce(), 3u);  // frees block 0's copy, demotes 1, lands 3
  EXPECT_FALSE(View(0).on_gpu);
  EXPECT_EQ(gpu().demoted_blocks(), 1u);  // block 1 only; block 0 was just freed
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(ReadsBack(i)) << i;
}

TEST_P(GpuTierTest, AHeldGpuCopyIsNotDemoted) {
  Open(2, /*high=*/0.9, /*low=*/0.4);
  Put(0, true);
  Put(1, false);
  gpu().MoveOnce();
  std::shared_ptr<const DeviceBlock> held = store_->index().DeviceCopy(ns_, Key(0));
  ASSERT_NE(held, nullptr);
  Put(2, false);
  gpu().MoveOnce();
  EXPECT_TRUE(View(0).on_gpu);   // held: skipped
  EXPECT_FALSE(View(1).on_gpu);  // demoted in its place
  held.reset();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(ReadsBack(i)) << i;
}

// A same-host worker's GPU lease: it reads the GPU copy itself, which
// counts as a hit, and its hold keeps the pages even past eviction.
TEST_P(GpuTierTest, AGpuCopyReadUnderALeaseOutlivesEviction) {
  Open(8);
  Put(0, true);
  Put(1, false);
  Put(2, false, /*offer=*/false);  // stays on the host
  gpu().MoveOnce();
  std::shared_ptr<const DeviceBlock> leased = store_->index().ReadDeviceCopy(ns_, Key(1));
  ASSERT_NE(leased, nullptr);
  EXPECT_EQ(View(1).hits, 1u);
  EXPECT_EQ(store_->index().ReadDeviceCopy(ns_, Key(2)), nullptr);
  ASSERT_TRUE(store_->index().EvictSubtree(ns_, Key(0), /*dry_run=*/false).ok());
  EXPECT_EQ(store_->index().device_blocks(), 0u);
  EXPECT_EQ(gpu().used_bytes(), kPage);  // the leased copy's page
  leased.reset();
  EXPECT_EQ(gpu().used_bytes(), 0u);
}

TEST_P(GpuTierTest, AFailedGpuDisablesItsTierAndTheHostKeepsServing) {
  Open(8);
  Put(0, true);                    // lands: lives only on the GPU
  Put(1, false, /*offer=*/false);  // its child, on the host
  Put(2, true, /*offer=*/false);   // another chain, promoted below
  ASSERT_TRUE(ReadsBack(2));
  ASSERT_TRUE(ReadsBack(2));
  EXPECT_EQ(gpu().MoveOnce(), 2u);
  ASSERT_TRUE(View(2).on_gpu && View(2).on_host);

  gpu().memory().InjectCopyFailure(absl::InternalError("GPU fell off the bus"));
  EXPECT_FALSE(ReadsBack(0));  // its only copy is gone: a miss, with its subtree
  EXPECT_TRUE(gpu().failed());
  EXPECT_NE(gpu().failure().find("fell off the bus"), std::string::npos);
  EXPECT_FALSE(store_->index().Inspect(ns_, Key(0)).has_value());
  EXPECT_FALSE(store_->index().Inspect(ns_, Key(1)).has_value());
  gpu().MoveOnce();  // frees every GPU copy left
  EXPECT_EQ(store_->index().device_blocks(), 0u);
  EXPECT_EQ(gpu().used_bytes(), 0u);
  EXPECT_TRUE(ReadsBack(2));  // the host copy serves
  Put(3, false);              // offers are ignored now
  gpu().MoveOnce();
  EXPECT_FALSE(View(3).on_gpu);
  EXPECT_TRUE(ReadsBack(3));
}

// Overwrites the first byte of block i's GPU copy.
void CorruptGpuCopy(BlockStore& store, NamespaceId ns, int i) {
  std::shared_ptr<const DeviceBlock> device = store.index().DeviceCopy(ns, Key(i));
  ASSERT_NE(device, nullptr);
  uint8_t* first = store.gpu()->memory().pool().PageData(device->pages()[0]);
  const uint8_t flipped = static_cast<uint8_t>(Payload(i)[0] ^ 0xFF);
  ASSERT_TRUE(store.gpu()->memory().Upload({{first, &flipped, 1}}).ok());
}

TEST_P(GpuTierTest, ACorruptGpuCopyIsAMissOnReadAndOnDemotion) {
  Open(2, /*high=*/0.9, /*low=*/0.4);
  Put(0, true);
  Put(1, false);
  Put(2, true);
  EXPECT_EQ(gpu().MoveOnce(), 2u);  // 0 and 1 land; 2 finds no pages
  CorruptGpuCopy(*store_, ns_, 1);
  EXPECT_FALSE(ReadsBack(1));  // never the wrong bytes: a miss, and dropped
  EXPECT_FALSE(store_->index().Inspect(ns_, Key(1)).has_value());
  EXPECT_FALSE(gpu().failed());  // the tier itself is fine
  EXPECT_TRUE(ReadsBack(0));

  Put(3, false, /*offer=*/false);  // a child of 2, to go with it
  Put(4, false);                   // lands in block 1's pages: the pool is full
  gpu().MoveOnce();
  CorruptGpuCopy(*store_, ns_, 4);
  Put(5, true);
  EXPECT_GE(gpu().MoveOnce(), 1u);  // demotes 0 (copy kept below), drops 4
  EXPECT_FALSE(store_->index().Inspect(ns_, Key(4)).has_value());
  EXPECT_EQ(gpu().demoted_blocks(), 0u);
  for (int i : {0, 2, 3, 5}) EXPECT_TRUE(ReadsBack(i)) << i;
}

TEST_P(GpuTierTest, ConcurrentPutsAndReadsStayByteExactWhileBlocksMove) {
  Open(6, /*high=*/0.8, /*low=*/0.5, /*background=*/true);
  constexpr int kThreads = 4, kChains = 6, kDepth = 3;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int c = t; c < kChains; c += kThreads) {
        for (int d = 0; d < kDepth; ++d) Put(c * 10 + d, d == 0);
      }
      for (int round = 0; round < 200; ++round) {
        const int c = (round + t) % kChains, d = round % kDepth;
        std::optional<BlockPin> pin = store_->PinForRead(ns_, Key(c * 10 + d));
        if (!pin.has_value()) continue;  // not put yet, or evicted
        std::vector<uint8_t> back(pin->meta().size);
        pin->block().pages().Read(0, absl::MakeSpan(back));
        if (back != Payload(c * 10 + d)) wrong.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(gpu().landed_blocks(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Backings, GpuTierTest,
                         ::testing::Values(Backing::kHostMemory, Backing::kGpu),
                         [](const auto& info) {
                           return info.param == Backing::kGpu ? "Gpu" : "HostMemory";
                         });

}  // namespace
}  // namespace kvcache
