#include "kvstore/index/block_directory.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "client/block_directory_reader.h"
#include "gtest/gtest.h"

namespace kvcache {
namespace {

using Result = BlockDirectoryReader::Result;

constexpr uint32_t kPage = 4096;

BlockKey KeyOf(int i) { return *BlockKey::FromBytes("block-" + std::to_string(i)); }

// Block i's bytes: every 8-byte word says whose it is and where it sits, so a
// copy mixing two blocks (or two places) cannot pass for either.
uint64_t Word(int block, uint64_t index) { return (uint64_t(block + 1) << 40) | index; }

void Fill(PageRun& run, int block) {
  std::vector<uint64_t> words(run.size() / 8);
  for (size_t w = 0; w < words.size(); ++w) words[w] = Word(block, w);
  run.Write(0, {reinterpret_cast<const uint8_t*>(words.data()), run.size()});
}

bool Holds(const std::vector<uint8_t>& bytes, int block, uint64_t offset) {
  for (size_t at = 0; at + 8 <= bytes.size(); at += 8) {
    uint64_t w;
    std::memcpy(&w, bytes.data() + at, 8);
    if (w != Word(block, (offset + at) / 8)) return false;
  }
  return true;
}

class BlockDirectoryTest : public ::testing::Test {
 protected:
  void Make(uint64_t capacity) {
    arena_ = *HostArena::Create({.capacity_bytes = capacity, .page_bytes = kPage});
    directory_ = *BlockDirectory::Create(*arena_, 64);
    // As a worker maps them: read-only, from the fds.
    dir_map_ = mmap(nullptr, directory_->bytes(), PROT_READ, MAP_SHARED, directory_->fd(), 0);
    arena_map_ = mmap(nullptr, arena_->capacity_bytes(), PROT_READ, MAP_SHARED, arena_->fd(), 0);
    ASSERT_NE(dir_map_, MAP_FAILED);
    ASSERT_NE(arena_map_, MAP_FAILED);
    reader_ = *BlockDirectoryReader::Create(
        static_cast<const uint8_t*>(dir_map_), directory_->bytes(),
        static_cast<const uint8_t*>(arena_map_), arena_->capacity_bytes());
  }
  void TearDown() override {
    if (dir_map_ != nullptr) munmap(dir_map_, directory_->bytes());
    if (arena_map_ != nullptr) munmap(arena_map_, arena_->capacity_bytes());
  }
  Result Read(uint32_t ns, int block, uint64_t offset, std::vector<uint8_t>& out) {
    return reader_->Copy(ns, KeyOf(block), offset, {out.data(), out.size()}, false);
  }

  std::unique_ptr<HostArena> arena_;
  std::unique_ptr<BlockDirectory> directory_;
  void* dir_map_ = nullptr;
  void* arena_map_ = nullptr;
  std::unique_ptr<BlockDirectoryReader> reader_;
};

TEST_F(BlockDirectoryTest, ListedBlockCopiesByteExactWholeAndInRanges) {
  Make(1 << 20);
  PageRun run = *arena_->Allocate(3 * kPage + 1000);  // four pages, the last partly used
  Fill(run, 7);
  const uint32_t slot = directory_->List(5, KeyOf(7), run);
  ASSERT_NE(slot, BlockDirectory::kNotListed);
  EXPECT_EQ(directory_->listed(), 1u);

  std::vector<uint8_t> whole(run.size());
  EXPECT_EQ(Read(5, 7, 0, whole), Result::kCopied);
  EXPECT_TRUE(Holds(whole, 7, 0));
  std::vector<uint8_t> middle(2 * kPage);  // starts mid-page, crosses two links
  EXPECT_EQ(Read(5, 7, kPage + 8 * 100, middle), Result::kCopied);
  EXPECT_TRUE(Holds(middle, 7, kPage + 8 * 100));
  std::vector<uint8_t> tail(1000);
  EXPECT_EQ(Read(5, 7, 3 * kPage, tail), Result::kCopied);
  EXPECT_TRUE(Holds(tail, 7, 3 * kPage));
}

TEST_F(BlockDirectoryTest, OnlyTheExactKeyAndNamespaceHit) {
  Make(1 << 20);
  PageRun run = *arena_->Allocate(kPage);
  Fill(run, 1);
  directory_->List(5, KeyOf(1), run);
  std::vector<uint8_t> out(kPage, 0xee);
  EXPECT_EQ(Read(6, 1, 0, out), Result::kMissing);  // another namespace
  EXPECT_EQ(Read(5, 2, 0, out), Result::kMissing);  // another key
  // A key that is a prefix of the listed one (same padded words, shorter).
  const BlockKey prefix = *BlockKey::FromBytes("block-");
  EXPECT_EQ(reader_->Copy(5, prefix, 0, {out.data(), out.size()}, false), Result::kMissing);
  std::vector<uint8_t> too_long(kPage + 1);
  EXPECT_EQ(Read(5, 1, 0, too_long), Result::kMissing);  // the lease path says why
  std::vector<uint8_t> past_end(8);
  EXPECT_EQ(Read(5, 1, kPage - 4, past_end), Result::kMissing);
  EXPECT_EQ(out, std::vector<uint8_t>(kPage, 0xee));  // a miss leaves dest alone
}

TEST_F(BlockDirectoryTest, WithdrawnBlockIsMissingAndItsSlotIsReused) {
  Make(1 << 20);
  PageRun run = *arena_->Allocate(kPage);
  Fill(run, 1);
  const uint32_t slot = directory_->List(0, KeyOf(1), run);
  directory_->Withdraw(slot);
  EXPECT_EQ(directory_->listed(), 0u);
  std::vector<uint8_t> out(kPage);
  EXPECT_EQ(Read(0, 1, 0, out), Result::kMissing);
  EXPECT_EQ(directory_->List(0, KeyOf(1), run), slot);
  EXPECT_EQ(Read(0, 1, 0, out), Result::kCopied);
}

TEST_F(BlockDirectoryTest, FullBucketLeavesTheBlockUnlisted) {
  Make(4 * kPage);  // the 1/64 cap gives one bucket: every key shares it
  PageRun run = *arena_->Allocate(kPage);
  Fill(run, 0);
  // The directory never reads pages, so one run can stand for every block.
  for (uint32_t i = 0; i < kDirectoryWays + 1; ++i) {
    const uint32_t slot = directory_->List(0, KeyOf(static_cast<int>(i)), run);
    EXPECT_EQ(slot == BlockDirectory::kNotListed, i == kDirectoryWays) << i;
  }
  EXPECT_EQ(directory_->listed(), kDirectoryWays);
  EXPECT_EQ(directory_->unlisted(), 1u);
  std::vector<uint8_t> out(kPage);
  EXPECT_EQ(Read(0, kDirectoryWays, 0, out), Result::kMissing);
  EXPECT_EQ(Read(0, 0, 0, out), Result::kCopied);
  EXPECT_TRUE(Holds(out, 0, 0));
}

TEST_F(BlockDirectoryTest, CompleteOnlyWhileEveryCachedBlockIsListed) {
  Make(4 * kPage);  // one bucket, as above
  PageRun run = *arena_->Allocate(kPage);
  EXPECT_FALSE(reader_->complete());  // until the store says its tiers are listable
  directory_->SetComplete(true);
  EXPECT_TRUE(reader_->complete());
  for (uint32_t i = 0; i < kDirectoryWays; ++i) directory_->List(0, KeyOf(i), run);
  EXPECT_TRUE(reader_->complete());
  // A block left out of the full bucket: a key the directory lacks may be cached.
  ASSERT_EQ(directory_->List(0, KeyOf(99), run), BlockDirectory::kNotListed);
  EXPECT_FALSE(reader_->complete());
  bool changed = true;
  EXPECT_EQ(reader_->ListedSize(0, KeyOf(99), &changed), std::nullopt);
  EXPECT_FALSE(changed);
  EXPECT_EQ(reader_->ListedSize(0, KeyOf(1)), kPage);
  // That block is gone again: complete again.
  directory_->ForgetUnlisted();
  EXPECT_TRUE(reader_->complete());
  // A tier the directory cannot list (NVMe, GPU) keeps it incomplete.
  directory_->SetComplete(false);
  EXPECT_FALSE(reader_->complete());
}

TEST_F(BlockDirectoryTest, ReadersStopTrustingItOnceTheDaemonStopsBeating) {
  Make(1 << 20);
  EXPECT_TRUE(reader_->live());
  // The daemon goes away; the worker's mapping stays, and so do its bytes.
  const uint64_t bytes = directory_->bytes();
  directory_.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(kDirectoryStaleMs + 200));
  EXPECT_FALSE(reader_->live());
  munmap(dir_map_, bytes);
  dir_map_ = nullptr;
  munmap(arena_map_, arena_->capacity_bytes());
  arena_map_ = nullptr;
}

TEST_F(BlockDirectoryTest, WorkersCanOnlyMapItReadOnly) {
  Make(1 << 20);
  void* writable =
      mmap(nullptr, directory_->bytes(), PROT_READ | PROT_WRITE, MAP_SHARED, directory_->fd(), 0);
  EXPECT_EQ(writable, MAP_FAILED);
  EXPECT_EQ(errno, EPERM);
}

TEST_F(BlockDirectoryTest, ReaderRejectsAnUnknownOrMisfitHeader) {
  std::vector<uint8_t> junk(1 << 16, 0x5a);
  std::vector<uint8_t> arena(1 << 16);
  EXPECT_FALSE(
      BlockDirectoryReader::Create(junk.data(), junk.size(), arena.data(), arena.size()).ok());
  Make(1 << 20);
  // A directory for a larger arena than the one mapped.
  EXPECT_FALSE(BlockDirectoryReader::Create(static_cast<const uint8_t*>(dir_map_),
                                            directory_->bytes(),
                                            static_cast<const uint8_t*>(arena_map_), 4096)
                   .ok());
  EXPECT_FALSE(BlockDirectoryReader::Create(static_cast<const uint8_t*>(dir_map_), 32,
                                            static_cast<const uint8_t*>(arena_map_),
                                            arena_->capacity_bytes())
                   .ok());
}

// Offsets so large their sums wrap around 2^64 must not pass for ones that
// fit (the slots would be read from before the mapping), and a slot whose
// block is larger than the arena is not followed through its page links
// (a cycle of links would otherwise be walked for as long as it asked).
TEST_F(BlockDirectoryTest, ReaderRejectsWrappingOffsetsAndOversizedSlots) {
  Make(1 << 20);
  std::vector<uint8_t> copy(directory_->bytes());
  std::memcpy(copy.data(), dir_map_, copy.size());
  DirectoryHeader h;
  std::memcpy(&h, copy.data(), sizeof(h));
  DirectoryHeader wrapped = h;
  wrapped.slots_offset = ~uint64_t{0} - 63;  // + the slots wraps to a small number
  wrapped.next_offset = (wrapped.slots_offset + uint64_t{h.bucket_count} * kDirectoryWays *
                                                    sizeof(DirectorySlot));
  std::memcpy(copy.data(), &wrapped, sizeof(wrapped));
  EXPECT_FALSE(BlockDirectoryReader::Create(copy.data(), copy.size(),
                                            static_cast<const uint8_t*>(arena_map_),
                                            arena_->capacity_bytes())
                   .ok());
  wrapped = h;
  wrapped.next_offset = ~uint64_t{0} - 3;  // + the page links wraps
  std::memcpy(copy.data(), &wrapped, sizeof(wrapped));
  EXPECT_FALSE(BlockDirectoryReader::Create(copy.data(), copy.size(),
                                            static_cast<const uint8_t*>(arena_map_),
                                            arena_->capacity_bytes())
                   .ok());

  // A listed block whose slot then claims more bytes than the arena has,
  // with its first page linked to itself.
  std::memcpy(copy.data(), &h, sizeof(h));
  auto reader = BlockDirectoryReader::Create(copy.data(), copy.size(),
                                             static_cast<const uint8_t*>(arena_map_),
                                             arena_->capacity_bytes());
  ASSERT_TRUE(reader.ok());
  const DirectoryKey key(KeyOf(1).data(), KeyOf(1).size());
  auto* slot = reinterpret_cast<DirectorySlot*>(
      copy.data() + h.slots_offset +
      uint64_t{DirectoryBucket(3, key, h.bucket_count)} * kDirectoryWays * sizeof(DirectorySlot));
  slot->seq.store(2);
  slot->ns.store(3);
  slot->first_page.store(0);
  slot->size.store(uint64_t{1} << 62);
  slot->key_size.store(key.size);
  for (size_t w = 0; w < kDirectoryKeyWords; ++w) slot->key[w].store(key.words[w]);
  reinterpret_cast<std::atomic<uint32_t>*>(copy.data() + h.next_offset)[0].store(0);
  std::vector<uint8_t> out(4096);
  EXPECT_EQ((*reader)->Copy(3, KeyOf(1), uint64_t{1} << 61, {out.data(), out.size()}, false),
            Result::kChanged);
}

// The seqlock under fire, across processes as in production: a forked reader
// copies blocks while this process withdraws them, frees their pages, fills
// the pages with other blocks and lists those. Every copy the reader accepts
// must be exactly the block it asked for.
TEST_F(BlockDirectoryTest, CopiesAcceptedDuringChurnAreNeverTorn) {
  constexpr int kBlocks = 12;  // more than fit: pages pass between blocks
  constexpr uint64_t kSize = 3 * kPage + 512;
  Make(16 * kPage);  // room for 4 blocks of 4 pages
  struct Shared {
    std::atomic<uint64_t> copied{0}, changed{0}, torn{0};
    std::atomic<bool> stop{false};
  };
  void* mem =
      mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  Shared* shared = new (mem) Shared();

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::vector<uint8_t> out(kSize);
    for (uint64_t i = 0; !shared->stop.load(); ++i) {
      const int block = static_cast<int>(i % kBlocks);
      switch (Read(0, block, 0, out)) {
        case Result::kCopied:
          (Holds(out, block, 0) ? shared->copied : shared->torn).fetch_add(1);
          break;
        case Result::kChanged:
          shared->changed.fetch_add(1);
          break;
        case Result::kMissing:
          break;
      }
    }
    _exit(0);
  }

  std::vector<std::pair<PageRun, uint32_t>> held(kBlocks);  // run, slot
  std::mt19937 rng(42);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline &&
         (shared->copied.load() < 2000 || shared->changed.load() < 20)) {
    const int block = static_cast<int>(rng() % kBlocks);
    auto& [run, slot] = held[block];
    if (run.page_count() > 0) {
      directory_->Withdraw(slot);
      run = PageRun();  // pages back to the arena, for the next block
      continue;
    }
    absl::StatusOr<PageRun> pages = arena_->Allocate(kSize);
    if (!pages.ok()) continue;
    run = *std::move(pages);
    Fill(run, block);
    slot = directory_->List(0, KeyOf(block), run);
    if (slot == BlockDirectory::kNotListed) run = PageRun();
  }
  shared->stop.store(true);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(shared->torn.load(), 0u);
  EXPECT_GE(shared->copied.load(), 2000u);
  EXPECT_GE(shared->changed.load(), 20u) << "the churn never overlapped a copy";
  for (auto& [run, slot] : held) {
    if (run.page_count() > 0) directory_->Withdraw(slot);
  }
  munmap(mem, sizeof(Shared));
}

}  // namespace
}  // namespace kvcache
