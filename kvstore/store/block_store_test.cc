#include "kvstore/store/block_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kvstore/store/store_test_blocks.h"

namespace kvcache {
namespace {

constexpr uint64_t kPage = 64 << 10;
constexpr absl::Duration kRetry = absl::Milliseconds(20);  // of a disabled NVMe tier

BlockKey Key(int i) { return TestKey(i); }
std::vector<uint8_t> Payload(int i) { return TestPayload(i, kPage - 100); }

class BlockStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = std::string(tmp ? tmp : "/tmp") + "/block_store_test";
    std::filesystem::remove_all(dir_);
  }

  // A 16-page (1 MiB) arena over an NVMe tier of `nvme_bytes`.
  void Open(uint64_t nvme_bytes = 8 << 20, uint32_t admit_min_hits = 0,
            NvmeFaultPoint* faults = nullptr) {
    store_.reset();
    BlockStore::Options o;
    o.arena.capacity_bytes = 16 * kPage;
    o.arena.page_bytes = kPage;
    o.arena.prefault = false;
    o.index_shards = 4;
    NvmeTier::Options nvme;
    nvme.store.dir = dir_;
    nvme.store.bytes = nvme_bytes;
    nvme.admit_min_hits = admit_min_hits;
    nvme.store.faults = faults;
    nvme.retry_interval = kRetry;
    o.nvme = nvme;
    o.spill_high = 0.9;
    o.spill_low = 0.25;
    o.spill_in_background = false;
    absl::StatusOr<std::unique_ptr<BlockStore>> s = BlockStore::Create(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    ASSERT_NE(store_->nvme(), nullptr) << store_->nvme_unavailable();
    ns_ = *store_->namespaces().Intern("tenant", "ns");
  }

  // Puts block i (a child of block i-1 unless i is a root) of one page.
  void Put(int i, bool root) { StoreTestBlock(*store_, ns_, i, root, Payload(i)); }

  bool ReadsBack(int i) { return ReadsBackAs(*store_, ns_, i, Payload(i)); }

  std::optional<BlockView> View(int i) { return store_->index().Inspect(ns_, Key(i)); }

  std::string dir_;
  std::unique_ptr<BlockStore> store_;
  NamespaceId ns_ = 0;
};

TEST_F(BlockStoreTest, SpillFreesHostPagesAndPromotionReadsBack) {
  Open();
  for (int i = 0; i < 15; ++i) Put(i, i == 0);  // 15 of 16 pages: past the high watermark
  EXPECT_GT(store_->SpillToLowWatermark(), 0u);
  EXPECT_LE(store_->arena().used_bytes(), 4 * kPage);
  EXPECT_EQ(store_->index().blocks(), 15u);  // nothing left the cache
  EXPECT_EQ(store_->index().host_blocks(), 4u);
  EXPECT_EQ(store_->nvme()->blocks(), 11u);
  // The coldest (the chain's head) went first.
  ASSERT_TRUE(View(0).has_value());
  EXPECT_FALSE(View(0)->on_host);
  EXPECT_TRUE(View(0)->on_nvme);
  EXPECT_TRUE(View(14)->on_host);
  for (int i = 0; i < 15; ++i) EXPECT_TRUE(ReadsBack(i)) << i;
  EXPECT_EQ(store_->promoted_blocks(), 11u);
  EXPECT_TRUE(View(0)->on_host);  // promoted, and its NVMe copy kept
  EXPECT_TRUE(View(0)->on_nvme);
  EXPECT_EQ(store_->pinned_bytes().load(), 0u);
}

TEST_F(BlockStoreTest, HostPressureDropsCleanCopiesBeforeAnyBlock) {
  Open();
  for (int i = 0; i < 15; ++i) Put(i, i == 0);
  store_->SpillToLowWatermark();
  for (int i = 0; i < 11; ++i) ASSERT_TRUE(ReadsBack(i));  // promoted: 15 pages used, 11 clean
  for (int i = 15; i < 20; ++i) Put(i, false);  // 5 pages: 1 free, 4 clean copies dropped
  EXPECT_EQ(store_->evicted_blocks(), 0u);
  EXPECT_EQ(store_->index().blocks(), 20u);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(View(i)->on_host) << i;  // the coldest clean ones
  EXPECT_TRUE(View(4)->on_host);
}

TEST_F(BlockStoreTest, WarmRestartFindsEveryNvmeBlock) {
  Open();
  for (int i = 0; i < 15; ++i) Put(i, i % 5 == 0);  // three chains of five
  store_->SpillToLowWatermark();
  const uint64_t on_nvme = store_->nvme()->blocks();
  ASSERT_EQ(on_nvme, 11u);
  Open();  // a new store on the same directory
  EXPECT_EQ(store_->restored_blocks(), on_nvme);
  EXPECT_EQ(store_->index().blocks(), on_nvme);
  EXPECT_EQ(store_->index().host_blocks(), 0u);
  std::vector<ChainBlock> chain;
  EXPECT_EQ(store_->index().LookupChain(ns_, {Key(0), Key(1), Key(2), Key(3), Key(4)}, &chain),
            5u);
  EXPECT_FALSE(chain[0].on_host);
  ASSERT_TRUE(View(4).has_value());
  EXPECT_EQ(View(4)->meta.depth, 5u);
  EXPECT_EQ(View(4)->meta.root, Key(0));
  for (int i = 0; i < 11; ++i) EXPECT_TRUE(ReadsBack(i)) << i;
}

TEST_F(BlockStoreTest, CorruptNvmeRecordIsAMissAndDropsItsSubtree) {
  Open();
  for (int i = 0; i < 15; ++i) Put(i, i == 0);
  store_->SpillToLowWatermark();
  const NvmeBlockId id{"tenant", "ns", Key(3).ToBytes()};
  absl::StatusOr<NvmeEntry> entry = store_->nvme()->store().Find(id);
  ASSERT_TRUE(entry.ok());
  const int fd = open((dir_ + "/blocks.data").c_str(), O_RDWR);
  uint8_t b = 0;
  ASSERT_EQ(pread(fd, &b, 1, entry->offset + 4096 + 777), 1);
  b ^= 1;
  ASSERT_EQ(pwrite(fd, &b, 1, entry->offset + 4096 + 777), 1);
  fsync(fd);
  close(fd);
  EXPECT_TRUE(ReadsBack(2));
  EXPECT_FALSE(ReadsBack(3));  // a miss, never wrong bytes
  EXPECT_EQ(store_->nvme()->counters().corrupt_drops, 1u);
  EXPECT_FALSE(View(3).has_value());
  EXPECT_FALSE(View(14).has_value());  // below it: unreachable, dropped
  EXPECT_EQ(store_->index().blocks(), 3u);
  EXPECT_EQ(store_->nvme()->blocks(), 3u);  // 0-2 kept; the subtree's records went
}

// The disk answers EIO, then short transfers, on reads and then on writes:
// the tier disables itself, every block still in DRAM keeps being served,
// no torn record is ever indexed, and the tier comes back when the faults
// clear.
TEST_F(BlockStoreTest, InjectedDiskFaultsDisableTheTierWhileDramServes) {
  NvmeFaultPoint faults;
  Open(8 << 20, 0, &faults);
  for (int i = 0; i < 15; ++i) Put(i, i == 0);
  store_->SpillToLowWatermark();
  ASSERT_EQ(store_->nvme()->blocks(), 11u);  // 0-10 on NVMe only, 11-14 in DRAM

  for (NvmeFaultPoint::Fault fault : {NvmeFaultPoint::Fault::kEio, NvmeFaultPoint::Fault::kShort}) {
    faults.SetReads(fault);
    absl::SleepFor(kRetry);  // the next read is a probe
    EXPECT_FALSE(ReadsBack(0));  // a miss, never wrong bytes
    EXPECT_FALSE(store_->nvme()->enabled());
    EXPECT_NE(store_->nvme()->Detail().find("disabled"), std::string::npos)
        << store_->nvme()->Detail();
    for (int i = 11; i < 15; ++i) EXPECT_TRUE(ReadsBack(i)) << i;  // DRAM serves
    EXPECT_TRUE(View(0).has_value());  // kept: the disk may come back
  }
  faults.Clear();
  absl::SleepFor(kRetry);
  EXPECT_TRUE(ReadsBack(0));  // the probe works: enabled again
  EXPECT_TRUE(store_->nvme()->enabled());
  for (int i = 0; i < 15; ++i) EXPECT_TRUE(ReadsBack(i)) << i;

  // Writes. Blocks 15-29 join the chain; spilling them fails and they stay
  // in DRAM (clean promoted copies make the room).
  const uint64_t on_nvme = store_->nvme()->blocks();
  for (NvmeFaultPoint::Fault fault : {NvmeFaultPoint::Fault::kEio, NvmeFaultPoint::Fault::kShort}) {
    faults.SetWrites(fault);
    absl::SleepFor(kRetry);
    const int first = fault == NvmeFaultPoint::Fault::kEio ? 15 : 20;
    for (int i = first; i < first + 5; ++i) Put(i, false);
    store_->SpillToLowWatermark();
    EXPECT_FALSE(store_->nvme()->writes_open());
    EXPECT_EQ(store_->nvme()->blocks(), on_nvme);  // nothing torn was indexed
    for (int i = first; i < first + 5; ++i) EXPECT_TRUE(ReadsBack(i)) << i;
  }
  EXPECT_GT(store_->nvme()->counters().write_errors, 0u);
  faults.Clear();
  absl::SleepFor(kRetry);
  for (int i = 25; i < 30; ++i) Put(i, false);
  store_->SpillToLowWatermark();
  EXPECT_TRUE(store_->nvme()->writes_open());
  EXPECT_GT(store_->nvme()->blocks(), on_nvme);
  EXPECT_GE(faults.injected(), 4u);

  // Torn records left by the short writes are not in the index: a restart
  // finds exactly the blocks written whole, and each reads back.
  const uint64_t written = store_->nvme()->blocks();
  Open();
  EXPECT_EQ(store_->restored_blocks(), written);
  EXPECT_EQ(store_->nvme()->counters().corrupt_drops, 0u);
  for (int i = 0; i < 30; ++i) {
    if (View(i).has_value()) {
      EXPECT_TRUE(ReadsBack(i)) << i;
    }
  }
}

TEST_F(BlockStoreTest, FullNvmeDropsItsColdestLeavesAndStaysPrefixClosed) {
  Open(/*nvme_bytes=*/6 * (kPage + 4096));  // room for six records
  for (int round = 0; round < 4; ++round) {
    for (int i = round * 10; i < round * 10 + 10; ++i) Put(i, i % 10 == 0);
    store_->SpillToLowWatermark();
  }
  EXPECT_GT(store_->nvme_evicted_blocks(), 0u);
  EXPECT_LE(store_->nvme()->blocks(), 6u);
  for (const BlockView& v : store_->index().Snapshot({ns_})) {
    if (v.meta.parent.empty()) continue;
    EXPECT_TRUE(store_->index().Inspect(ns_, v.meta.parent).has_value()) << v.meta.key.ToHex();
  }
}

TEST_F(BlockStoreTest, AdmissionWritesOnlyBlocksReadTwice) {
  Open(8 << 20, /*admit_min_hits=*/2);
  for (int i = 0; i < 15; ++i) Put(i, true);
  for (int n = 0; n < 2; ++n) ASSERT_TRUE(ReadsBack(7));
  store_->SpillToLowWatermark();
  EXPECT_EQ(store_->nvme()->blocks(), 1u);
  EXPECT_TRUE(View(7)->on_nvme);
  EXPECT_GT(store_->nvme()->counters().not_admitted, 0u);
}

TEST_F(BlockStoreTest, SpillCandidatesDoNotKeepBlocksFromEviction) {
  Open();
  for (int i = 0; i < 16; ++i) Put(i, true);  // the arena is full
  std::vector<SpillCandidate> candidates = store_->index().ColdestOnHost(32);
  ASSERT_EQ(candidates.size(), 16u);
  EXPECT_EQ(candidates[0].key, Key(0));  // coldest first
  EXPECT_EQ(View(0)->readers, 0u);
  EXPECT_TRUE(store_->index().EvictOneLeaf().has_value());
}

TEST_F(BlockStoreTest, CopyOutReadsAnNvmeOnlyBlockWithoutPromotingIt) {
  Open();
  for (int i = 0; i < 15; ++i) Put(i, i == 0);
  store_->SpillToLowWatermark();
  ASSERT_FALSE(View(0)->on_host);
  const uint64_t hits = View(0)->hits;
  absl::StatusOr<std::string> copy = store_->CopyOut(ns_, Key(0));
  ASSERT_TRUE(copy.ok()) << copy.status();
  const std::vector<uint8_t> want = Payload(0);
  EXPECT_EQ(*copy, std::string(want.begin(), want.end()));
  // Nothing moved, no hit counted, the pages for the read given back.
  EXPECT_FALSE(View(0)->on_host);
  EXPECT_EQ(View(0)->hits, hits);
  EXPECT_EQ(store_->promoted_blocks(), 0u);
  EXPECT_LE(store_->arena().used_bytes(), 4 * kPage);
  EXPECT_EQ(store_->pinned_bytes().load(), 0u);
  // A block in host pages is copied from them; an unknown key is NOT_FOUND.
  ASSERT_TRUE(View(14)->on_host);
  copy = store_->CopyOut(ns_, Key(14));
  ASSERT_TRUE(copy.ok()) << copy.status();
  const std::vector<uint8_t> want14 = Payload(14);
  EXPECT_EQ(*copy, std::string(want14.begin(), want14.end()));
  EXPECT_EQ(store_->CopyOut(ns_, Key(99)).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace kvcache
