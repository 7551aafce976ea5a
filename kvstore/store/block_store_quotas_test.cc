// Per-tenant bounds per tier (BlockStore::Options::tenant_quotas), through
// the store that keeps them: host, NVMe and GPU (its page pool in host
// memory, so the rules run everywhere; gpu_tier_test runs the real GPU).
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kvstore/store/block_store.h"
#include "kvstore/store/staged_block.h"
#include "kvstore/store/store_test_blocks.h"

namespace kvcache {
namespace {

constexpr uint64_t kPage = 64 << 10;
constexpr uint64_t kBlock = kPage - 100;  // one page in every tier

class BlockStoreQuotasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = std::string(tmp ? tmp : "/tmp") + "/block_store_quotas_test";
    std::filesystem::remove_all(dir_);
  }

  // A 16-page arena over an NVMe tier of `nvme_bytes` (0: none) or a GPU
  // pool of `gpu_pages` pages (0: none), tenants "a" and "b".
  void Open(TenantQuotas quotas, uint64_t nvme_bytes, uint32_t gpu_pages = 0,
            double gpu_high = 0.9, double gpu_low = 0.5) {
    store_.reset();
    BlockStore::Options o;
    o.arena.capacity_bytes = 16 * kPage;
    o.arena.page_bytes = kPage;
    o.arena.prefault = false;
    o.index_shards = 4;
    if (nvme_bytes > 0) {
      NvmeTier::Options nvme;
      nvme.store.dir = dir_;
      nvme.store.bytes = nvme_bytes;
      o.nvme = nvme;
    }
    if (gpu_pages > 0) {
      GpuTier::Options gpu;
      gpu.pool = {0, gpu_pages * kPage, static_cast<uint32_t>(kPage)};
      gpu.high = gpu_high;
      gpu.low = gpu_low;
      gpu.move_in_background = false;
      o.gpu = gpu;
      o.gpu_in_host_memory = true;
    }
    o.spill_high = 0.9;
    o.spill_low = 0.25;
    o.spill_in_background = false;
    o.tenant_quotas = std::move(quotas);
    absl::StatusOr<std::unique_ptr<BlockStore>> s = BlockStore::Create(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    a_ = *store_->namespaces().Intern("a", "ns");
    b_ = *store_->namespaces().Intern("b", "ns");
  }

  // Block i as a root (every block is a leaf), committed as a put commits:
  // through CommitWithinQuota, its tenant's bounds applied.
  absl::StatusOr<InsertOutcome> Put(NamespaceId ns, int i) {
    const std::vector<uint8_t> bytes = TestPayload(i, kBlock);
    BlockMeta meta;
    meta.key = TestKey(i);
    meta.size = bytes.size();
    meta.checksum = BlockChecksum(bytes);
    StagedBlock staged(ns, meta, *store_, nullptr, std::nullopt);
    if (absl::Status s = staged.Append(bytes); !s.ok()) return s;
    absl::StatusOr<InsertOutcome> done =
        store_->CommitWithinQuota(store_->namespaces().Name(ns).tenant, staged);
    if (done.ok() && store_->gpu() != nullptr) store_->BlockStored(ns, TestKey(i));
    return done;
  }
  void MustPut(NamespaceId ns, int i) {
    absl::StatusOr<InsertOutcome> done = Put(ns, i);
    ASSERT_TRUE(done.ok()) << done.status();
    ASSERT_EQ(*done, InsertOutcome::kStored) << i;
  }
  bool ReadsBack(NamespaceId ns, int i) {
    return ReadsBackAs(*store_, ns, i, TestPayload(i, kBlock));
  }
  BlockView View(NamespaceId ns, int i) {
    std::optional<BlockView> v = store_->index().Inspect(ns, TestKey(i));
    EXPECT_TRUE(v.has_value()) << i;
    return v.value_or(BlockView{});
  }
  bool Cached(NamespaceId ns, int i) { return store_->index().Inspect(ns, TestKey(i)).has_value(); }

  std::string dir_;
  std::unique_ptr<BlockStore> store_;
  NamespaceId a_ = 0, b_ = 0;
};

TEST_F(BlockStoreQuotasTest, UsageIsKeptPerTierAsBlocksMove) {
  Open({}, 8 << 20);
  for (int i = 0; i < 4; ++i) MustPut(a_, i);
  for (int i = 100; i < 110; ++i) MustPut(b_, i);  // 14 of 16 pages
  NamespaceUsage a = store_->TenantUsage("a");
  EXPECT_EQ(a.blocks, 4u);
  EXPECT_EQ(a.bytes, 4 * kBlock);
  EXPECT_EQ(a.host_bytes, 4 * kBlock);
  EXPECT_EQ(a.nvme_bytes, 0u);
  store_->SpillToLowWatermark();  // the coldest (a's) go to NVMe
  a = store_->TenantUsage("a");
  EXPECT_EQ(a.bytes, 4 * kBlock);
  EXPECT_EQ(a.host_bytes, 0u);
  EXPECT_EQ(a.nvme_bytes, 4 * kBlock);
  ASSERT_TRUE(ReadsBack(a_, 0));  // promoted: on both
  a = store_->TenantUsage("a");
  EXPECT_EQ(a.host_bytes, kBlock);
  EXPECT_EQ(a.nvme_bytes, 4 * kBlock);
  ASSERT_TRUE(store_->EvictKey(a_, TestKey(0), false).ok());
  a = store_->TenantUsage("a");
  EXPECT_EQ(a.blocks, 3u);
  EXPECT_EQ(a.host_bytes, 0u);
  EXPECT_EQ(a.nvme_bytes, 3 * kBlock);
  const NamespaceUsage b = store_->TenantUsage("b");
  EXPECT_EQ(b.bytes, 10 * kBlock);
  EXPECT_EQ(b.host_bytes, 4 * kBlock);  // 104-109 stayed
  EXPECT_EQ(b.nvme_bytes, 6 * kBlock);
  EXPECT_EQ(store_->TenantUsage("nobody").bytes, 0u);
}

TEST_F(BlockStoreQuotasTest, AtItsHostBoundATenantMovesItsOwnCopiesToNvmeBeforeDroppingAny) {
  Open({{"a", {.host = 3 * kBlock}}}, 8 << 20);
  for (int i = 0; i < 3; ++i) MustPut(a_, i);
  for (int i = 100; i < 107; ++i) MustPut(b_, i);  // 10 pages
  store_->SpillToLowWatermark();                   // a's 0-2 (the coldest) and b's 100-102
  MustPut(a_, 3);
  // Promotions past the bound move a's coldest NVMe-backed host copy off.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ReadsBack(a_, i)) << i;
  EXPECT_LE(store_->TenantUsage("a").host_bytes, 3 * kBlock);
  EXPECT_FALSE(View(a_, 0).on_host);
  EXPECT_TRUE(View(a_, 0).on_nvme);
  EXPECT_TRUE(View(a_, 2).on_host);

  // Commits past it: 1's and 2's host copies leave (they are on NVMe) ...
  MustPut(a_, 4);
  MustPut(a_, 5);
  EXPECT_EQ(store_->evicted_blocks(), 0u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(!View(a_, i).on_host && View(a_, i).on_nvme) << i;
  // ... then, with none left on NVMe, its coldest host leaf goes.
  MustPut(a_, 6);
  EXPECT_EQ(store_->evicted_blocks(), 1u);
  EXPECT_FALSE(Cached(a_, 3));
  EXPECT_EQ(store_->TenantUsage("a").host_bytes, 3 * kBlock);
  // b, without bounds, lost nothing to a's puts.
  for (int i = 100; i < 107; ++i) EXPECT_TRUE(ReadsBack(b_, i)) << i;
  for (int i : {0, 1, 2, 4, 5, 6}) EXPECT_TRUE(ReadsBack(a_, i)) << i;
}

TEST_F(BlockStoreQuotasTest, AtItsNvmeBoundATenantsSpillDropsItsOwnColdestNvmeLeaves) {
  Open({{"a", {.nvme = 3 * kBlock}}}, 8 << 20);
  for (int i = 0; i < 6; ++i) MustPut(a_, i);
  for (int i = 100; i < 106; ++i) MustPut(b_, i);  // 12 pages
  store_->SpillToLowWatermark();
  EXPECT_LE(store_->TenantUsage("a").nvme_bytes, 3 * kBlock);
  EXPECT_GT(store_->TenantUsage("b").nvme_bytes, 0u);
  for (int i = 100; i < 106; ++i) EXPECT_TRUE(Cached(b_, i)) << i;

  // More of a's blocks go cold: its NVMe keeps its newest, never more.
  for (int i = 6; i < 12; ++i) MustPut(a_, i);
  store_->SpillToLowWatermark();
  const NamespaceUsage a = store_->TenantUsage("a");
  EXPECT_LE(a.nvme_bytes, 3 * kBlock);
  EXPECT_GT(a.nvme_bytes, 0u);
  EXPECT_GT(store_->nvme_evicted_blocks(), 0u);
  EXPECT_FALSE(Cached(a_, 0));  // its coldest went first
  for (int i = 100; i < 106; ++i) EXPECT_TRUE(ReadsBack(b_, i)) << i;
  for (int i = 0; i < 12; ++i) {
    if (Cached(a_, i)) EXPECT_TRUE(ReadsBack(a_, i)) << i;
  }
}

TEST_F(BlockStoreQuotasTest, HostPressureSparesATenantWithinItsHostBound) {
  Open({{"a", {.host = 4 * kBlock}}}, 0);
  for (int i = 0; i < 4; ++i) MustPut(a_, i);       // a's, the coldest
  for (int i = 100; i < 130; ++i) MustPut(b_, i);   // b floods the arena twice
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(ReadsBack(a_, i)) << i;
  EXPECT_GT(store_->evicted_blocks(), 0u);
  EXPECT_FALSE(Cached(b_, 100));
}

TEST_F(BlockStoreQuotasTest, AtItsGpuBoundATenantDemotesItsOwnColdestGpuCopies) {
  Open({{"a", {.device = 2 * kBlock}}}, 0, /*gpu_pages=*/8);
  for (int i = 0; i < 4; ++i) {
    MustPut(a_, i);
    store_->gpu()->MoveOnce();
  }
  // Each landed; past the bound a's coldest copies came down to the host.
  EXPECT_EQ(store_->gpu()->landed_blocks(), 4u);
  EXPECT_EQ(store_->gpu()->demoted_blocks(), 2u);
  EXPECT_EQ(store_->TenantUsage("a").device_bytes, 2 * kBlock);
  EXPECT_TRUE(!View(a_, 0).on_gpu && View(a_, 0).on_host);
  EXPECT_TRUE(View(a_, 3).on_gpu);
  // b has no bound: all of its land.
  for (int i = 100; i < 104; ++i) MustPut(b_, i);
  store_->gpu()->MoveOnce();
  EXPECT_EQ(store_->TenantUsage("b").device_bytes, 4 * kBlock);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(ReadsBack(a_, i)) << i;
  for (int i = 100; i < 104; ++i) EXPECT_TRUE(ReadsBack(b_, i)) << i;
}

TEST_F(BlockStoreQuotasTest, GpuPressureDemotesOthersBeforeATenantWithinItsGpuBound) {
  Open({{"a", {.device = 2 * kBlock}}}, 0, /*gpu_pages=*/4, /*high=*/0.75, /*low=*/0.5);
  for (int i = 0; i < 2; ++i) MustPut(a_, i);  // a's, the coldest
  store_->gpu()->MoveOnce();
  for (int i = 100; i < 102; ++i) MustPut(b_, i);
  store_->gpu()->MoveOnce();
  ASSERT_EQ(store_->gpu()->landed_blocks(), 4u);  // the pool is full
  MustPut(b_, 102);
  store_->gpu()->MoveOnce();  // pressure: b's copies come down, not a's
  EXPECT_TRUE(View(a_, 0).on_gpu);
  EXPECT_TRUE(View(a_, 1).on_gpu);
  EXPECT_FALSE(View(b_, 100).on_gpu);
  EXPECT_EQ(store_->TenantUsage("a").device_bytes, 2 * kBlock);
  for (int i = 100; i < 103; ++i) EXPECT_TRUE(ReadsBack(b_, i)) << i;
}

TEST_F(BlockStoreQuotasTest, ABlockLargerThanABoundIsRefused) {
  Open({{"a", {.host = kBlock - 1}}}, 0);
  absl::StatusOr<InsertOutcome> done = Put(a_, 0);
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(done.status().message().find("host quota"), std::string::npos) << done.status();
}

}  // namespace
}  // namespace kvcache
