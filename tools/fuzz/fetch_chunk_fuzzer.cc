// libFuzzer target: DecodeFetchChunk on any bytes, split into up to three
// receive slices as gRPC hands them over. It must never crash or read out
// of bounds; a chunk it accepts must carry exactly data_length payload
// bytes, and re-encoding its header in front of that payload must decode to
// the same chunk.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "proto/fetch_chunk_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using kvcache::DecodeFetchChunk;
  if (size == 0) return 0;
  // The first byte picks where the slices split.
  const size_t a = size > 1 ? data[0] % size : 0;
  const size_t b = a + (size - a) / 2;
  std::vector<absl::Span<const uint8_t>> pieces;
  for (auto [from, to] : {std::pair<size_t, size_t>{1, a}, {a, b}, {b, size}}) {
    if (from < to) pieces.emplace_back(data + from, to - from);
  }
  auto decoded = DecodeFetchChunk(pieces);
  if (!decoded.ok()) return 0;
  std::string payload;
  for (absl::Span<const uint8_t> p : decoded->data) {
    payload.append(reinterpret_cast<const char*>(p.data()), p.size());
  }
  if (payload.size() != decoded->header.data_length) __builtin_trap();
  const std::string again = kvcache::EncodeFetchChunkHeader(decoded->header) + payload;
  const absl::Span<const uint8_t> whole(reinterpret_cast<const uint8_t*>(again.data()),
                                        again.size());
  auto redecoded = DecodeFetchChunk({&whole, 1});
  if (!redecoded.ok()) __builtin_trap();
  const auto& h1 = decoded->header;
  const auto& h2 = redecoded->header;
  if (h1.item_index != h2.item_index || h1.block_size != h2.block_size ||
      h1.block_checksum != h2.block_checksum || h1.offset != h2.offset ||
      h1.data_length != h2.data_length || h1.tier != h2.tier) {
    __builtin_trap();
  }
  return 0;
}
