#include "proto/fetch_chunk_codec.h"

#include <cstring>

namespace kvcache {
namespace {

enum Field : uint32_t {
  kItemIndex = 1,
  kBlockSize = 2,
  kBlockChecksum = 3,
  kOffset = 4,
  kData = 5,
  kTier = 6,
};
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutTag(std::string& out, Field f, WireType w) { PutVarint(out, (uint64_t{f} << 3) | w); }

// Reads bytes across a list of pieces.
class PieceCursor {
 public:
  explicit PieceCursor(absl::Span<const absl::Span<const uint8_t>> pieces) : pieces_(pieces) {
    SkipEmpty();
  }
  bool done() const { return piece_ == pieces_.size(); }

  bool ReadByte(uint8_t* b) {
    if (done()) return false;
    *b = pieces_[piece_][pos_++];
    SkipEmpty();
    return true;
  }
  bool ReadVarint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!ReadByte(&b)) return false;
      *v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  bool ReadFixed64(uint64_t* v) {
    uint8_t b[8];
    for (uint8_t& x : b) {
      if (!ReadByte(&x)) return false;
    }
    std::memcpy(v, b, 8);  // little-endian host
    return true;
  }
  // Takes `n` bytes as spans of the input; false if fewer remain.
  bool Take(uint64_t n, std::vector<absl::Span<const uint8_t>>* out) {
    while (n > 0) {
      if (done()) return false;
      const size_t avail = pieces_[piece_].size() - pos_;
      const size_t k = static_cast<size_t>(std::min<uint64_t>(n, avail));
      if (out != nullptr) out->push_back(pieces_[piece_].subspan(pos_, k));
      pos_ += k;
      n -= k;
      SkipEmpty();
    }
    return true;
  }

 private:
  void SkipEmpty() {
    while (piece_ < pieces_.size() && pos_ == pieces_[piece_].size()) {
      ++piece_;
      pos_ = 0;
    }
  }
  absl::Span<const absl::Span<const uint8_t>> pieces_;
  size_t piece_ = 0;
  size_t pos_ = 0;
};

}  // namespace

std::string EncodeFetchChunkHeader(const FetchChunkHeader& h) {
  std::string out;
  out.reserve(48);
  PutTag(out, kItemIndex, kVarint);
  PutVarint(out, h.item_index);
  PutTag(out, kBlockSize, kVarint);
  PutVarint(out, h.block_size);
  PutTag(out, kBlockChecksum, kFixed64);
  char b[8];
  std::memcpy(b, &h.block_checksum, 8);  // little-endian host
  out.append(b, 8);
  PutTag(out, kOffset, kVarint);
  PutVarint(out, h.offset);
  if (h.tier != 0) {
    PutTag(out, kTier, kVarint);
    PutVarint(out, h.tier);
  }
  PutTag(out, kData, kLengthDelimited);
  PutVarint(out, h.data_length);
  return out;
}

absl::StatusOr<DecodedFetchChunk> DecodeFetchChunk(
    absl::Span<const absl::Span<const uint8_t>> pieces) {
  DecodedFetchChunk chunk;
  PieceCursor in(pieces);
  const absl::Status bad = absl::InvalidArgumentError("malformed FetchChunk");
  while (!in.done()) {
    uint64_t tag, v;
    if (!in.ReadVarint(&tag)) return bad;
    const uint32_t field = static_cast<uint32_t>(tag >> 3);
    switch (static_cast<WireType>(tag & 7)) {
      case kVarint:
        if (!in.ReadVarint(&v)) return bad;
        if (field == kItemIndex) chunk.header.item_index = static_cast<uint32_t>(v);
        if (field == kBlockSize) chunk.header.block_size = v;
        if (field == kOffset) chunk.header.offset = v;
        if (field == kTier) chunk.header.tier = static_cast<uint32_t>(v);
        break;
      case kFixed64:
        if (!in.ReadFixed64(&v)) return bad;
        if (field == kBlockChecksum) chunk.header.block_checksum = v;
        break;
      case kLengthDelimited:
        if (!in.ReadVarint(&v)) return bad;
        if (field == kData) {
          chunk.data.clear();
          chunk.header.data_length = v;
          if (!in.Take(v, &chunk.data)) return bad;
        } else if (!in.Take(v, nullptr)) {
          return bad;
        }
        break;
      case kFixed32:
        if (!in.Take(4, nullptr)) return bad;
        break;
      default:
        return bad;
    }
  }
  return chunk;
}

}  // namespace kvcache
