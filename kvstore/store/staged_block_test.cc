#include "kvstore/store/staged_block.h"

#include <cstring>

#include "gtest/gtest.h"
#include "kvstore/store/block_store.h"

namespace kvcache {
namespace {

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

class StagedBlockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(*BlockStore::Create(
        {.arena = {.capacity_bytes = 64 * 4096, .page_bytes = 4096}, .index_shards = 2}));
  }
  std::unique_ptr<StagedBlock> Stage(const std::string& key, const std::string& payload,
                                     uint64_t checksum, ConnectionShare* share = nullptr) {
    BlockMeta meta;
    meta.key = *BlockKey::FromBytes(key);
    meta.size = payload.size();
    meta.checksum = checksum;
    return std::make_unique<StagedBlock>(0, meta, *store_, share, std::nullopt);
  }
  // Stores a block of `pages` pages filled with `fill` under `key`.
  void StoreBlock(const std::string& key, int pages, char fill) {
    const std::string payload(pages * 4096, fill);
    auto staged = Stage(key, payload, BlockChecksum(Bytes(payload)));
    ASSERT_TRUE(staged->Append(Bytes(payload)).ok());
    ASSERT_EQ(*staged->Commit(store_->index()), InsertOutcome::kStored);
  }
  std::unique_ptr<BlockStore> store_;
};

TEST_F(StagedBlockTest, InvisibleUntilCommittedThenByteExact) {
  const std::string payload(10000, 'x');
  auto staged = Stage("k", payload, BlockChecksum(Bytes(payload)));
  ASSERT_TRUE(staged->Append(Bytes(payload).first(6000)).ok());
  EXPECT_EQ(store_->staged_bytes().load(), 8192u);  // the two pages the bytes need
  EXPECT_FALSE(store_->index().Pin(0, *BlockKey::FromBytes("k")).has_value());
  ASSERT_TRUE(staged->Append(Bytes(payload).subspan(6000)).ok());
  auto outcome = staged->Commit(store_->index());
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(*outcome, InsertOutcome::kStored);
  staged.reset();
  EXPECT_EQ(store_->staged_bytes().load(), 0u);
  auto pin = store_->index().Pin(0, *BlockKey::FromBytes("k"));
  ASSERT_TRUE(pin.has_value());
  std::string out(10000, '\0');
  pin->block().pages().Read(0, absl::MakeSpan(reinterpret_cast<uint8_t*>(out.data()), out.size()));
  EXPECT_EQ(out, payload);
}

TEST_F(StagedBlockTest, ChecksumMismatchIsDataLossAndLeavesNothing) {
  const std::string payload(5000, 'y');
  auto staged = Stage("k", payload, BlockChecksum(Bytes(payload)) ^ 1);
  ASSERT_TRUE(staged->Append(Bytes(payload)).ok());
  EXPECT_EQ(staged->Commit(store_->index()).status().code(), absl::StatusCode::kDataLoss);
  staged.reset();
  EXPECT_EQ(store_->index().blocks(), 0u);
  EXPECT_EQ(store_->arena().used_bytes(), 0u);
  EXPECT_EQ(store_->staged_bytes().load(), 0u);
}

TEST_F(StagedBlockTest, ReceiveIntoFillsPagesAndHashes) {
  std::string payload(3 * 4096 + 100, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 13);
  auto staged = Stage("r", payload, BlockChecksum(Bytes(payload)));
  size_t from = 0, calls = 0;
  auto reader = [&](uint8_t* dst, size_t len) {
    std::memcpy(dst, payload.data() + from, len);
    from += len;
    ++calls;
    return true;
  };
  ASSERT_TRUE(staged->ReceiveInto(5000, reader).ok());
  ASSERT_TRUE(staged->ReceiveInto(payload.size() - 5000, reader).ok());
  EXPECT_EQ(calls, 5u);  // one call per page piece
  EXPECT_EQ(*staged->Commit(store_->index()), InsertOutcome::kStored);
  EXPECT_EQ(staged->ReceiveInto(1, reader).code(), absl::StatusCode::kInvalidArgument);
  auto failing = Stage("f", payload, 0);
  EXPECT_EQ(failing->ReceiveInto(10, [](uint8_t*, size_t) { return false; }).code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(StagedBlockTest, OverrunAndShortBlocksAreInvalid) {
  const std::string payload(100, 'z');
  auto staged = Stage("k", payload, BlockChecksum(Bytes(payload)));
  ASSERT_TRUE(staged->Append(Bytes(payload).first(60)).ok());
  EXPECT_EQ(staged->Append(Bytes(payload)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(staged->received(), 60u);
  EXPECT_EQ(staged->Commit(store_->index()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(StagedBlockTest, AllocateEvictingDropsLeavesButNeverTooBig) {
  EXPECT_EQ(store_->AllocateEvicting(65 * 4096).status().code(),
            absl::StatusCode::kResourceExhausted);
  for (int i = 0; i < 4; ++i) {
    const std::string payload(16 * 4096, static_cast<char>('a' + i));
    auto staged = Stage(std::string(1, 'a' + i), payload, BlockChecksum(Bytes(payload)));
    ASSERT_TRUE(staged->Append(Bytes(payload)).ok());
    ASSERT_EQ(*staged->Commit(store_->index()), InsertOutcome::kStored);
  }
  EXPECT_EQ(store_->arena().used_bytes(), 64u * 4096);
  auto pages = store_->AllocateEvicting(20 * 4096);  // needs two blocks dropped
  ASSERT_TRUE(pages.ok());
  EXPECT_EQ(store_->evicted_blocks(), 2u);
  EXPECT_EQ(store_->index().blocks(), 2u);
}

TEST_F(StagedBlockTest, AnnouncedBytesHoldNothingAndEvictNothing) {
  for (int i = 0; i < 4; ++i) StoreBlock(std::string(1, 'a' + i), 16, 'a');
  ASSERT_EQ(store_->arena().used_bytes(), 64u * 4096);  // the arena is full
  // Seventeen puts that announced a 16-page block and sent nothing.
  std::vector<std::unique_ptr<StagedBlock>> stalled;
  const std::string announced(16 * 4096, 's');
  for (int i = 0; i < 17; ++i) stalled.push_back(Stage("s" + std::to_string(i), announced, 0));
  ASSERT_TRUE(stalled[1]->Append({}).ok());  // a header message carries no data
  EXPECT_EQ(store_->staged_bytes().load(), 0u);
  EXPECT_EQ(store_->evicted_blocks(), 0u);
  EXPECT_EQ(store_->index().blocks(), 4u);
  // One byte takes one page (and makes room for it), no more.
  ASSERT_TRUE(stalled[0]->Append(Bytes(announced).first(1)).ok());
  EXPECT_EQ(stalled[0]->held_bytes(), 4096u);
  EXPECT_EQ(store_->staged_bytes().load(), 4096u);
  EXPECT_EQ(store_->evicted_blocks(), 1u);
  stalled.clear();
  EXPECT_EQ(store_->staged_bytes().load(), 0u);
}

TEST_F(StagedBlockTest, ReceiveIntoTakesOnePageAheadOfTheBytes) {
  const std::string payload(8 * 4096, 'p');
  auto staged = Stage("r", payload, BlockChecksum(Bytes(payload)));
  size_t calls = 0;
  // The reader checks, before each page's bytes arrive, that no more than
  // that page is held beyond the bytes already received.
  auto reader = [&](uint8_t* dst, size_t len) {
    EXPECT_LE(staged->held_bytes(), staged->received() + 4096);
    std::memset(dst, 'p', len);
    ++calls;
    return true;
  };
  ASSERT_TRUE(staged->ReceiveInto(payload.size(), reader).ok());
  EXPECT_EQ(calls, 8u);
  EXPECT_EQ(*staged->Commit(store_->index()), InsertOutcome::kStored);
}

TEST_F(StagedBlockTest, ConnectionShareBoundsWhatOneConnectionStages) {
  ConnectionShare share(8 * 4096);
  const std::string six(6 * 4096, '6'), three(3 * 4096, '3');
  auto first = Stage("first", six, BlockChecksum(Bytes(six)), &share);
  ASSERT_TRUE(first->Append(Bytes(six)).ok());
  EXPECT_EQ(share.held(), 6u * 4096);
  auto second = Stage("second", three, BlockChecksum(Bytes(three)), &share);
  const absl::Status over = second->Append(Bytes(three));
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(over.message().find("--connection_share"), std::string::npos) << over;
  EXPECT_EQ(second->received(), 0u);
  EXPECT_EQ(share.held(), 6u * 4096);
  // A committed block belongs to the cache, not to the connection.
  ASSERT_EQ(*first->Commit(store_->index()), InsertOutcome::kStored);
  EXPECT_EQ(share.held(), 0u);
  ASSERT_TRUE(second->Append(Bytes(three)).ok());
  second.reset();
  EXPECT_EQ(share.held(), 0u);
  EXPECT_EQ(store_->staged_bytes().load(), 0u);
}

}  // namespace
}  // namespace kvcache
