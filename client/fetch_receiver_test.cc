#include "client/fetch_receiver.h"

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "key/checksum.h"

namespace kvcache {
namespace {

// Two 1,000-byte blocks, the second asked from offset 100 (a range, which is
// not hashed), and the daemon's bytes for them.
class FetchReceiverTest : public ::testing::Test {
 protected:
  FetchReceiverTest() : source_(2000, 0), dest_(1900, 0) {
    for (size_t i = 0; i < source_.size(); ++i) source_[i] = static_cast<uint8_t>(i * 7 + 3);
    targets_.push_back({*BlockKey::FromBytes("key-one"), {dest_.data(), 1000}, 0});
    targets_.push_back({*BlockKey::FromBytes("key-two"), {dest_.data() + 1000, 900}, 100});
    progress_.tiers = &tiers_;
  }

  // The header of a piece of item `item`: bytes [offset, offset + length).
  FetchChunkHeader Piece(uint32_t item, uint64_t offset, uint64_t length) const {
    FetchChunkHeader h;
    h.item_index = item;
    h.block_size = 1000;
    // (An item past the two has no bytes to hash: the receiver refuses it.)
    if (item < 2) h.block_checksum = BlockChecksum({source_.data() + item * 1000, 1000});
    h.offset = offset;
    h.data_length = length;
    h.tier = item == 0 ? v1::TIER_HOST : v1::TIER_NVME;
    return h;
  }

  // Sends the piece through `receiver` as a transport does: Begin, write
  // and hash, End.
  absl::Status Send(FetchReceiver& receiver, const FetchChunkHeader& h) {
    absl::StatusOr<uint8_t*> to = receiver.Begin(h);
    if (!to.ok()) return to.status();
    const uint8_t* from = source_.data() + h.item_index * 1000 + h.offset;
    if (ChecksumStream* hash = receiver.checksum()) {
      hash->CopyAndUpdate(*to, {from, static_cast<size_t>(h.data_length)});
    } else {
      std::memcpy(*to, from, h.data_length);
    }
    return receiver.End();
  }

  std::vector<uint8_t> source_;
  std::vector<uint8_t> dest_;
  std::vector<FetchTarget> targets_;
  std::vector<v1::Tier> tiers_;
  Transport::FetchProgress progress_;
};

TEST_F(FetchReceiverTest, WholeBlocksInPiecesAndARangeArriveAndAreCounted) {
  FetchReceiver receiver(targets_, /*verify=*/true, &progress_);
  ASSERT_TRUE(Send(receiver, Piece(0, 0, 400)).ok());
  EXPECT_TRUE(receiver.mid_target());
  EXPECT_EQ(progress_.completed, 0u);
  ASSERT_TRUE(Send(receiver, Piece(0, 400, 600)).ok());
  EXPECT_FALSE(receiver.mid_target());
  EXPECT_EQ(progress_.completed, 1u);
  ASSERT_TRUE(Send(receiver, Piece(1, 100, 900)).ok());
  EXPECT_EQ(progress_.completed, 2u);
  EXPECT_EQ(tiers_, (std::vector<v1::Tier>{v1::TIER_HOST, v1::TIER_NVME}));
  EXPECT_EQ(std::memcmp(dest_.data(), source_.data(), 1000), 0);
  EXPECT_EQ(std::memcmp(dest_.data() + 1000, source_.data() + 1100, 900), 0);
}

TEST_F(FetchReceiverTest, PiecesOutOfOrderOrOutsideWhatWasAskedAreRefused) {
  FetchReceiver receiver(targets_, /*verify=*/true, &progress_);
  // Another item than the next one.
  EXPECT_EQ(receiver.Begin(Piece(1, 100, 900)).status().code(), absl::StatusCode::kInternal);
  // A gap, and a piece longer than what is left of the target.
  EXPECT_EQ(receiver.Begin(Piece(0, 10, 100)).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(receiver.Begin(Piece(0, 0, 1001)).status().code(), absl::StatusCode::kInternal);
  ASSERT_TRUE(Send(receiver, Piece(0, 0, 1000)).ok());
  // The same item again, and the range's bytes from the block's start.
  EXPECT_EQ(receiver.Begin(Piece(0, 0, 1000)).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(receiver.Begin(Piece(1, 0, 900)).status().code(), absl::StatusCode::kInternal);
  ASSERT_TRUE(Send(receiver, Piece(1, 100, 900)).ok());
  // Past the last target.
  EXPECT_EQ(receiver.Begin(Piece(2, 0, 1)).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(progress_.completed, 2u);
}

TEST_F(FetchReceiverTest, AWholeBlockThatDoesNotMatchItsChecksumIsDataLoss) {
  FetchReceiver receiver(targets_, /*verify=*/true, &progress_);
  FetchChunkHeader h = Piece(0, 0, 1000);
  h.block_checksum ^= 1;  // as if a byte had changed on the way
  const absl::Status s = Send(receiver, h);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("failed its checksum"), std::string::npos) << s;
  EXPECT_EQ(progress_.completed, 0u);
  EXPECT_TRUE(tiers_.empty());
}

TEST_F(FetchReceiverTest, WithoutVerifyNothingIsHashed) {
  FetchReceiver receiver(targets_, /*verify=*/false, &progress_);
  FetchChunkHeader h = Piece(0, 0, 1000);
  h.block_checksum ^= 1;
  ASSERT_TRUE(receiver.Begin(h).ok());
  EXPECT_EQ(receiver.checksum(), nullptr);
  std::memcpy(dest_.data(), source_.data(), 1000);
  EXPECT_TRUE(receiver.End().ok());
  EXPECT_EQ(progress_.completed, 1u);
}

}  // namespace
}  // namespace kvcache
