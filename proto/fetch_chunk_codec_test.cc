#include "proto/fetch_chunk_codec.h"

#include "gtest/gtest.h"
#include "kvcache/v1/kvcache.pb.h"

namespace kvcache {
namespace {

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string Join(const std::vector<absl::Span<const uint8_t>>& pieces) {
  std::string out;
  for (auto p : pieces) out.append(reinterpret_cast<const char*>(p.data()), p.size());
  return out;
}

TEST(FetchChunkCodecTest, EncodedHeaderPlusDataIsAValidProto) {
  const std::string data(300000, 'q');
  FetchChunkHeader h{7, 1 << 21, 0xdeadbeefcafef00dull, 4096, data.size(), v1::TIER_NVME};
  const std::string wire = EncodeFetchChunkHeader(h) + data;
  v1::FetchChunk parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.item_index(), 7u);
  EXPECT_EQ(parsed.block_size(), 1u << 21);
  EXPECT_EQ(parsed.block_checksum(), 0xdeadbeefcafef00dull);
  EXPECT_EQ(parsed.offset(), 4096u);
  EXPECT_EQ(parsed.tier(), v1::TIER_NVME);
  EXPECT_EQ(parsed.data(), data);
}

TEST(FetchChunkCodecTest, DecodesProtobufOutputSplitAnywhere) {
  v1::FetchChunk c;
  c.set_item_index(3);
  c.set_block_size(1000);
  c.set_block_checksum(42);
  c.set_offset(10);
  c.set_tier(v1::TIER_HOST);
  c.set_data(std::string(1000, 'z') + "end");
  const std::string wire = c.SerializeAsString();
  for (size_t cut1 : {size_t{1}, size_t{5}, size_t{20}, wire.size() / 2}) {
    const size_t cut2 = std::min(wire.size(), cut1 + 7);
    std::vector<absl::Span<const uint8_t>> pieces = {
        Bytes(wire).subspan(0, cut1), Bytes(wire).subspan(cut1, cut2 - cut1),
        absl::Span<const uint8_t>(), Bytes(wire).subspan(cut2)};
    auto d = DecodeFetchChunk(pieces);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->header.item_index, 3u);
    EXPECT_EQ(d->header.block_size, 1000u);
    EXPECT_EQ(d->header.block_checksum, 42u);
    EXPECT_EQ(d->header.offset, 10u);
    EXPECT_EQ(d->header.tier, static_cast<uint32_t>(v1::TIER_HOST));
    EXPECT_EQ(Join(d->data), c.data());
  }
}

TEST(FetchChunkCodecTest, RejectsTruncatedInput) {
  FetchChunkHeader h{1, 10, 2, 0, 10};
  const std::string wire = EncodeFetchChunkHeader(h) + "short";
  std::vector<absl::Span<const uint8_t>> pieces = {Bytes(wire)};
  EXPECT_EQ(DecodeFetchChunk(pieces).status().code(), absl::StatusCode::kInvalidArgument);
  const std::string garbage = "\xff\xff\xff";
  std::vector<absl::Span<const uint8_t>> g = {Bytes(garbage)};
  EXPECT_EQ(DecodeFetchChunk(g).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kvcache
