#include "key/checksum.h"

#include <algorithm>
#include <string>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(ChecksumTest, KnownValues) {
  // XXH3-64, seed 0 (values from the xxHash reference implementation).
  EXPECT_EQ(BlockChecksum({}), 0x2d06800538d394c2ull);
  EXPECT_EQ(BlockChecksum(Bytes("a")), 0xe6c632b61e964e1full);
}

TEST(ChecksumTest, StreamMatchesOneShotForAnySplit) {
  std::string data(100000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 + 7);
  const uint64_t want = BlockChecksum(Bytes(data));
  for (size_t step : {size_t{1}, size_t{7}, size_t{4096}, size_t{65536}}) {
    ChecksumStream s;
    for (size_t off = 0; off < data.size(); off += step) {
      s.Update(Bytes(data).subspan(off, std::min(step, data.size() - off)));
    }
    EXPECT_EQ(s.Digest(), want) << step;
  }
}

// Copying and hashing in one pass stores the bytes and hashes them alike,
// across its internal piece boundaries and when called piece by piece.
TEST(ChecksumTest, CopyAndUpdateCopiesAndHashes) {
  std::string data(100000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 13 + 5);
  for (size_t step : {size_t{100000}, size_t{32768}, size_t{5000}}) {
    std::string copy(data.size(), '\0');
    ChecksumStream s;
    for (size_t off = 0; off < data.size(); off += step) {
      s.CopyAndUpdate(reinterpret_cast<uint8_t*>(copy.data()) + off,
                      Bytes(data).subspan(off, std::min(step, data.size() - off)));
    }
    EXPECT_EQ(copy, data) << step;
    EXPECT_EQ(s.Digest(), BlockChecksum(Bytes(data))) << step;
  }
}

// The streaming variant likewise, into destinations at any alignment (its
// non-temporal stores need 32-byte alignment: the head goes plainly).
TEST(ChecksumTest, CopyAndUpdateStreamingCopiesAndHashes) {
  std::string data(200000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 251);
  for (size_t misalign : {size_t{0}, size_t{1}, size_t{31}}) {
    for (size_t step : {size_t{200000}, size_t{16384}, size_t{16385}, size_t{777}}) {
      std::string copy(data.size() + misalign, '\0');
      uint8_t* dst = reinterpret_cast<uint8_t*>(copy.data()) + misalign;
      ChecksumStream s;
      for (size_t off = 0; off < data.size(); off += step) {
        s.CopyAndUpdateStreaming(dst + off,
                                 Bytes(data).subspan(off, std::min(step, data.size() - off)));
      }
      EXPECT_EQ(copy.substr(misalign), data) << step << " " << misalign;
      EXPECT_EQ(s.Digest(), BlockChecksum(Bytes(data))) << step << " " << misalign;
    }
  }
}

// Every length around XXH3's internal sizes (240-byte short inputs, 64-byte
// stripes, 1,024-byte blocks), each split in two at several points, by all
// three ways of feeding a stream: each must give the one-shot checksum.
TEST(ChecksumTest, EveryLengthAndSplitMatchesOneShot) {
  std::string data(4200, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 2654435761u) >> 13);
  std::string copy(data.size() + 1, '\0');
  for (size_t len = 0; len <= data.size(); len += len < 2200 ? 1 : 97) {
    const absl::Span<const uint8_t> input = Bytes(data).subspan(0, len);
    const uint64_t want = BlockChecksum(input);
    for (size_t split : {size_t{0}, std::min<size_t>(1, len), len / 3, len / 2, len > 64 ? len - 64 : 0,
                         len > 0 ? len - 1 : 0, len}) {
      for (int way = 0; way < 3; ++way) {
        ChecksumStream s;
        uint8_t* dst = reinterpret_cast<uint8_t*>(copy.data()) + 1;  // not 32-byte aligned
        for (const auto piece : {input.subspan(0, split), input.subspan(split)}) {
          if (way == 0) s.Update(piece);
          if (way == 1) s.CopyAndUpdate(dst, piece);
          if (way == 2) s.CopyAndUpdateStreaming(dst, piece);
          dst += piece.size();
        }
        ASSERT_EQ(s.Digest(), want) << "length " << len << " split " << split << " way " << way;
        if (way > 0) {
          ASSERT_EQ(copy.substr(1, len), data.substr(0, len)) << len << " " << split;
        }
      }
    }
  }
}

// A digest leaves the stream as it was: more bytes may follow.
TEST(ChecksumTest, DigestMidwayThenMore) {
  std::string data(5000, 'k');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i % 253);
  ChecksumStream s;
  s.Update(Bytes(data).subspan(0, 3000));
  EXPECT_EQ(s.Digest(), BlockChecksum(Bytes(data).subspan(0, 3000)));
  s.Update(Bytes(data).subspan(3000));
  EXPECT_EQ(s.Digest(), BlockChecksum(Bytes(data)));
}

}  // namespace
}  // namespace kvcache
