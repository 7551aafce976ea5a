#include "kvstore/index/block_index.h"

#include <sys/mman.h>

#include <thread>

#include "client/block_directory_reader.h"
#include "gtest/gtest.h"

namespace kvcache {
namespace {

BlockKey Key(const std::string& s) { return *BlockKey::FromBytes(s); }

class BlockIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    arena_ = std::move(*HostArena::Create({.capacity_bytes = 1 << 20, .page_bytes = 4096}));
    index_ = std::make_unique<BlockIndex>(4, &pinned_);
  }

  InsertOutcome Put(const std::string& key, const std::string& parent, uint64_t size = 100) {
    BlockMeta meta;
    meta.key = Key(key);
    if (!parent.empty()) meta.parent = Key(parent);
    meta.size = size;
    return index_->Insert(ns_, meta, std::move(*arena_->Allocate(size)));
  }

  size_t Lookup(std::vector<std::string> chain) {
    std::vector<BlockKey> keys;
    for (auto& s : chain) keys.push_back(Key(s));
    return index_->LookupChain(ns_, keys, nullptr);
  }

  std::string EvictOne() {
    std::vector<BlockView> before = index_->Snapshot({ns_});
    if (!index_->EvictOneLeaf().has_value()) return "";
    std::vector<BlockView> after = index_->Snapshot({ns_});
    for (auto& b : before) {
      bool still = false;
      for (auto& a : after) still |= a.meta.key == b.meta.key;
      if (!still) return b.meta.key.ToBytes();
    }
    return "?";
  }

  std::atomic<uint64_t> pinned_{0};
  std::unique_ptr<HostArena> arena_;
  std::unique_ptr<BlockIndex> index_;
  NamespaceId ns_ = 0;
};

TEST_F(BlockIndexTest, LookupCountsLeadingRunOnly) {
  ASSERT_EQ(Put("a", ""), InsertOutcome::kStored);
  ASSERT_EQ(Put("b", "a"), InsertOutcome::kStored);
  EXPECT_EQ(Lookup({"a", "b", "c"}), 2u);
  EXPECT_EQ(Lookup({"x", "a", "b"}), 0u);
  EXPECT_EQ(Lookup({"a", "x", "b"}), 1u);  // a hole stops the scan
  std::vector<ChainBlock> blocks;
  EXPECT_EQ(index_->LookupChain(ns_, {Key("a"), Key("b")}, &blocks), 2u);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].size, 100u);
  EXPECT_EQ(blocks[1].size, 100u);
  EXPECT_TRUE(blocks[0].on_host);
  EXPECT_EQ(index_->LookupChain(ns_ + 1, {Key("a")}, nullptr), 0u);  // other namespace
}

TEST_F(BlockIndexTest, InsertNeedsCachedParentAndSetsDepth) {
  EXPECT_EQ(Put("b", "a"), InsertOutcome::kParentMissing);
  EXPECT_EQ(arena_->used_bytes(), 0u);  // pages of a rejected block are freed
  ASSERT_EQ(Put("a", ""), InsertOutcome::kStored);
  ASSERT_EQ(Put("b", "a"), InsertOutcome::kStored);
  EXPECT_EQ(Put("b", "a"), InsertOutcome::kAlreadyCached);
  auto v = index_->Inspect(ns_, Key("b"));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->meta.depth, 2u);
  EXPECT_EQ(v->meta.root, Key("a"));
  EXPECT_EQ(index_->Inspect(ns_, Key("a"))->children, 1u);  // duplicate did not count twice
  ASSERT_TRUE(index_->Pin(ns_, Key("a")).has_value());
  ASSERT_TRUE(index_->PinAsParent(ns_, Key("a")).has_value());
  EXPECT_EQ(index_->Inspect(ns_, Key("a"))->hits, 1u);  // a put's parent pin is no hit
  EXPECT_EQ(index_->blocks(), 2u);
  EXPECT_EQ(index_->bytes(), 200u);
}

TEST_F(BlockIndexTest, EvictsLeavesFirstThenLeastRecentlyUsed) {
  ASSERT_EQ(Put("a", ""), InsertOutcome::kStored);
  ASSERT_EQ(Put("b", "a"), InsertOutcome::kStored);
  ASSERT_EQ(Put("c", "b"), InsertOutcome::kStored);
  ASSERT_EQ(Put("d", ""), InsertOutcome::kStored);
  EXPECT_EQ(Lookup({"a"}), 1u);  // a is now the most recent, but not a leaf
  // c is the oldest leaf; then b becomes a leaf with its old recency (older
  // than d); then d; a goes last.
  EXPECT_EQ(EvictOne(), "c");
  EXPECT_EQ(EvictOne(), "b");
  EXPECT_EQ(EvictOne(), "d");
  EXPECT_EQ(EvictOne(), "a");
  EXPECT_EQ(EvictOne(), "");
  EXPECT_EQ(arena_->used_bytes(), 0u);
}

// A touch moves a block only when more than an eighth of the cache has
// moved since it last did: one already among the newest keeps its place
// (and a lookup of a hot chain writes nothing), an old one moves.
TEST_F(BlockIndexTest, ATouchMovesOnlyABlockThatIsNoLongerAmongTheNewest) {
  const int n = 80;  // a refresh span of 10 ticks
  for (int i = 0; i < n; ++i) ASSERT_EQ(Put("k" + std::to_string(i), ""), InsertOutcome::kStored);
  EXPECT_EQ(Lookup({"k1"}), 1u);   // 79 moves old: to the newest end
  EXPECT_EQ(Lookup({"k75"}), 1u);  // 5 moves old: stays put
  std::vector<std::string> order;
  for (int i = 0; i < n; ++i) order.push_back(EvictOne());
  std::vector<std::string> want = {"k0"};
  for (int i = 2; i < n; ++i) want.push_back("k" + std::to_string(i));
  want.push_back("k1");
  EXPECT_EQ(order, want);
}

TEST_F(BlockIndexTest, EvictFirstBlocksGoBeforeOthersUntilFound) {
  ASSERT_EQ(Put("a", ""), InsertOutcome::kStored);
  BlockMeta meta;
  meta.size = 100;
  meta.evict_first = true;
  for (const char* k : {"x", "y"}) {
    meta.key = Key(k);
    ASSERT_EQ(index_->Insert(ns_, meta, std::move(*arena_->Allocate(100))),
              InsertOutcome::kStored);
  }
  ASSERT_EQ(Put("b", ""), InsertOutcome::kStored);
  EXPECT_EQ(Lookup({"y"}), 1u);  // found: an ordinary block from now on
  // x (marked) goes before a and b, although they are older; then a, b, y
  // in ordinary least-recent order.
  EXPECT_EQ(EvictOne(), "x");
  EXPECT_EQ(EvictOne(), "a");
  EXPECT_EQ(EvictOne(), "b");
  EXPECT_EQ(EvictOne(), "y");
}

TEST_F(BlockIndexTest, PinnedLeafSurvivesPressureAndKeepsPages) {
  ASSERT_EQ(Put("a", "", 5000), InsertOutcome::kStored);
  ASSERT_EQ(Put("b", "", 5000), InsertOutcome::kStored);
  std::optional<BlockPin> pin = index_->Pin(ns_, Key("a"));
  ASSERT_TRUE(pin.has_value());
  EXPECT_EQ(pinned_.load(), 5000u);
  EXPECT_EQ(EvictOne(), "b");  // a is older but pinned
  EXPECT_EQ(EvictOne(), "");   // only a pinned leaf left
  // Operator eviction unlinks it; the pages stay until the reader is done.
  ASSERT_TRUE(index_->EvictKey(ns_, Key("a"), false).ok());
  EXPECT_EQ(index_->Inspect(ns_, Key("a")), std::nullopt);
  EXPECT_EQ(arena_->used_bytes(), 2u * 4096);
  pin.reset();
  EXPECT_EQ(pinned_.load(), 0u);
  EXPECT_EQ(arena_->used_bytes(), 0u);
}

TEST_F(BlockIndexTest, OperatorEvictionByKeySubtreeAndNamespace) {
  ASSERT_EQ(Put("a", ""), InsertOutcome::kStored);
  ASSERT_EQ(Put("b", "a"), InsertOutcome::kStored);
  ASSERT_EQ(Put("c", "b"), InsertOutcome::kStored);
  ASSERT_EQ(Put("c2", "b"), InsertOutcome::kStored);
  ASSERT_EQ(Put("z", ""), InsertOutcome::kStored);
  EXPECT_EQ(index_->EvictKey(ns_, Key("b"), false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(index_->EvictKey(ns_, Key("q"), false).status().code(), absl::StatusCode::kNotFound);
  auto dry = index_->EvictSubtree(ns_, Key("b"), true);
  ASSERT_TRUE(dry.ok());
  EXPECT_EQ(dry->blocks, 3u);
  EXPECT_EQ(dry->bytes, 300u);
  EXPECT_EQ(index_->blocks(), 5u);  // a dry run changes nothing
  ASSERT_EQ(index_->EvictSubtree(ns_, Key("b"), false)->blocks, 3u);
  EXPECT_EQ(Lookup({"a", "b"}), 1u);
  EXPECT_EQ(index_->Inspect(ns_, Key("a"))->children, 0u);
  EXPECT_TRUE(index_->Inspect(ns_, Key("a")).has_value());
  EXPECT_EQ(EvictOne(), "z");  // a is a leaf again, but the lookup made it recent
  EvictCount all = index_->EvictNamespaces({ns_}, false);
  EXPECT_EQ(all.blocks, 1u);
  EXPECT_EQ(index_->blocks(), 0u);
  EXPECT_EQ(arena_->used_bytes(), 0u);
}

TEST_F(BlockIndexTest, EveryDropIsRecordedWithItsReason) {
  ASSERT_EQ(Put("a", ""), InsertOutcome::kStored);
  ASSERT_EQ(Put("b", "a"), InsertOutcome::kStored);
  ASSERT_EQ(Put("c", "b"), InsertOutcome::kStored);
  ASSERT_EQ(Put("p", ""), InsertOutcome::kStored);
  ASSERT_EQ(Put("q", ""), InsertOutcome::kStored);
  EXPECT_FALSE(index_->FindDrop(ns_, Key("a")).has_value());  // cached: nothing recorded
  EXPECT_EQ(Put("orphan", "gone"), InsertOutcome::kParentMissing);
  ASSERT_TRUE(index_->EvictKey(ns_, Key("p"), false).ok());
  ASSERT_TRUE(index_->EvictSubtree(ns_, Key("b"), false, MissReason::kIntegrity).ok());
  EXPECT_EQ(Lookup({"a"}), 1u);  // now a leaf: make it the most recent
  EXPECT_EQ(EvictOne(), "q");
  auto reason = [&](const std::string& key) {
    std::optional<Drop> drop = index_->FindDrop(ns_, Key(key));
    return drop.has_value() ? std::string(MissReasonName(drop->reason)) : "none";
  };
  EXPECT_EQ(reason("orphan"), "parent_missing");
  EXPECT_EQ(reason("p"), "evicted_operator");
  EXPECT_EQ(reason("b"), "integrity");
  EXPECT_EQ(reason("c"), "parent_missing");  // dropped because b failed verification
  EXPECT_EQ(reason("q"), "evicted_pressure");
  EXPECT_EQ(reason("a"), "none");
  EXPECT_EQ(reason("never"), "none");
  EXPECT_GT(index_->FindDrop(ns_, Key("q"))->unix_micros, 1700000000000000);  // wall clock
  index_->EvictNamespaces({ns_}, false);
  EXPECT_EQ(reason("a"), "evicted_operator");
}

TEST_F(BlockIndexTest, UsageIsCountedPerNamespace) {
  const NamespaceId other = 7;
  ASSERT_EQ(Put("a", "", 100), InsertOutcome::kStored);
  ASSERT_EQ(Put("b", "a", 50), InsertOutcome::kStored);
  BlockMeta meta;
  meta.key = Key("x");
  meta.size = 30;
  ASSERT_EQ(index_->Insert(other, meta, std::move(*arena_->Allocate(30))), InsertOutcome::kStored);
  auto usage = index_->UsageByNamespace();
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage[ns_].blocks, 2u);
  EXPECT_EQ(usage[ns_].bytes, 150u);
  EXPECT_EQ(usage[other].bytes, 30u);
  ASSERT_TRUE(index_->EvictKey(ns_, Key("b"), false).ok());
  ASSERT_TRUE(index_->EvictKey(other, Key("x"), false).ok());
  usage = index_->UsageByNamespace();
  ASSERT_EQ(usage.size(), 1u);  // a namespace holding nothing is left out
  EXPECT_EQ(usage[ns_].blocks, 1u);
  EXPECT_EQ(usage[ns_].bytes, 100u);
}

TEST_F(BlockIndexTest, ConcurrentUseStaysPrefixClosed) {
  // Writers insert chains, an evictor drops leaves, readers pin and look up;
  // afterwards every cached block's parent must still be cached.
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < 3; ++w) {
    threads.emplace_back([&, w] {
      for (int chain = 0; chain < 200; ++chain) {
        std::string parent;
        for (int i = 0; i < 8; ++i) {
          std::string key = "w" + std::to_string(w) + "c" + std::to_string(chain % 20) + "b" +
                            std::to_string(i);
          auto pages = arena_->Allocate(100);
          if (!pages.ok()) {
            index_->EvictOneLeaf();
            break;
          }
          BlockMeta meta;
          meta.key = Key(key);
          if (!parent.empty()) meta.parent = Key(parent);
          meta.size = 100;
          if (index_->Insert(ns_, meta, std::move(*pages)) == InsertOutcome::kParentMissing) break;
          parent = key;
        }
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop) {
      index_->EvictOneLeaf();
      auto pin = index_->Pin(ns_, Key("w0c1b0"));
      Lookup({"w1c2b0", "w1c2b1", "w1c2b2"});
    }
  });
  for (int i = 0; i < 3; ++i) threads[i].join();
  stop = true;
  threads.back().join();
  std::vector<BlockView> all = index_->Snapshot({ns_});
  for (const BlockView& b : all) {
    if (b.meta.parent.empty()) continue;
    EXPECT_TRUE(index_->Inspect(ns_, b.meta.parent).has_value()) << b.meta.key.ToBytes();
  }
  EXPECT_EQ(index_->blocks(), all.size());
  EXPECT_EQ(pinned_.load(), 0u);
}

// Bytes read back for one block never become the host copy of another
// block put under the same key meanwhile.
TEST_F(BlockIndexTest, ACopyReadForOtherBytesIsNotInstalled) {
  BlockMeta meta;
  meta.key = Key("x");
  meta.size = 100;
  meta.checksum = 7;
  ASSERT_EQ(index_->Insert(ns_, meta, PageRun(), /*on_nvme=*/true), InsertOutcome::kStored);
  EXPECT_FALSE(index_->InstallHostCopy(ns_, Key("x"), 8, *arena_->Allocate(100)).has_value());
  EXPECT_FALSE(index_->Inspect(ns_, Key("x"))->on_host);
  EXPECT_EQ(arena_->used_bytes(), 0u);  // the pages went back
  std::optional<BlockPin> pin = index_->InstallHostCopy(ns_, Key("x"), 7, *arena_->Allocate(100));
  ASSERT_TRUE(pin.has_value());
  EXPECT_TRUE(pin->block().on_host());
}

// The directory lists exactly the blocks that have host pages: a worker's
// direct copy finds a block from insert until eviction, spill or drop.
TEST_F(BlockIndexTest, DirectoryListsExactlyTheHostResidentBlocks) {
  std::unique_ptr<BlockDirectory> directory = *BlockDirectory::Create(*arena_, 64);
  index_->SetDirectory(directory.get());
  void* dir = mmap(nullptr, directory->bytes(), PROT_READ, MAP_SHARED, directory->fd(), 0);
  ASSERT_NE(dir, MAP_FAILED);
  std::unique_ptr<BlockDirectoryReader> reader =
      *BlockDirectoryReader::Create(static_cast<const uint8_t*>(dir), directory->bytes(),
                                    arena_->PageData(0), arena_->capacity_bytes());
  auto listed = [&](const std::string& key) {
    std::vector<uint8_t> out(100);
    return reader->Copy(ns_, Key(key), 0, {out.data(), out.size()}, false) ==
           BlockDirectoryReader::Result::kCopied;
  };
  // The presence table counts every cached block, listed or not, in any tier.
  auto absent = [&](const std::string& key) { return reader->Absent(ns_, Key(key)); };

  EXPECT_TRUE(absent("a") && absent("b") && absent("c"));
  ASSERT_EQ(Put("a", ""), InsertOutcome::kStored);
  ASSERT_EQ(Put("b", "a"), InsertOutcome::kStored);
  ASSERT_EQ(Put("c", "b"), InsertOutcome::kStored);
  EXPECT_TRUE(listed("a") && listed("b") && listed("c"));
  EXPECT_FALSE(absent("a") || absent("b") || absent("c"));
  EXPECT_TRUE(absent("d"));
  EXPECT_TRUE(reader->Absent(ns_ + 1, Key("a")));  // the same key in another namespace
  EXPECT_EQ(directory->listed(), 3u);

  // Spilled: the host copy goes, the block stays (on NVMe), unlisted.
  std::weak_ptr<const CachedBlock> b_block;
  for (const SpillCandidate& c : index_->ColdestOnHost(8)) {
    if (c.key == Key("b")) b_block = c.block;
  }
  ASSERT_TRUE(index_->MarkOnNvme(ns_, *b_block.lock()));
  const CachedBlock* b_identity = b_block.lock().get();  // no reference held past here
  ASSERT_GT(index_->DropHostCopy(ns_, Key("b"), b_identity), 0u);
  EXPECT_FALSE(listed("b"));
  EXPECT_FALSE(absent("b"));  // still cached, on NVMe: a lookup must ask
  EXPECT_EQ(directory->listed(), 2u);
  // Promoted: listed again, in its new pages.
  ASSERT_TRUE(index_->InstallHostCopy(ns_, Key("b"), 0, *arena_->Allocate(100)).has_value());
  EXPECT_TRUE(listed("b"));

  // Evicted by pressure (the leaf c), by key, and by namespace.
  EXPECT_EQ(EvictOne(), "c");
  EXPECT_FALSE(listed("c"));
  ASSERT_TRUE(index_->EvictKey(ns_, Key("b"), false).ok());
  EXPECT_FALSE(listed("b"));
  index_->EvictNamespaces({ns_}, false);
  EXPECT_FALSE(listed("a"));
  EXPECT_EQ(directory->listed(), 0u);
  EXPECT_TRUE(absent("a") && absent("b") && absent("c"));

  // Reported direct reads count as hits and make the block recent.
  ASSERT_EQ(Put("x", ""), InsertOutcome::kStored);
  ASSERT_EQ(Put("y", ""), InsertOutcome::kStored);
  index_->RecordDirectReads(ns_, Key("x"), 3);
  EXPECT_EQ(index_->Inspect(ns_, Key("x"))->hits, 3u);
  EXPECT_EQ(EvictOne(), "y");  // x was read more recently
  munmap(dir, directory->bytes());
}

}  // namespace
}  // namespace kvcache
