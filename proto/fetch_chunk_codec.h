// Hand encoding of kvcache.v1.FetchChunk, so the daemon can send a chunk as
// [small header slice][payload slices pointing into arena pages] without
// copying the payload into a protobuf, and the client can copy the payload
// from gRPC's receive slices straight into the caller's buffer.
//
// The bytes are ordinary protobuf wire format (fields 1-4 and 6, then field 5), so
// any protobuf parser reads them; the decoder accepts fields in any order.
//
// Thread safety: stateless functions.
#ifndef KVCACHE_PROTO_FETCH_CHUNK_CODEC_H_
#define KVCACHE_PROTO_FETCH_CHUNK_CODEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace kvcache {

struct FetchChunkHeader {
  uint32_t item_index = 0;
  uint64_t block_size = 0;
  uint64_t block_checksum = 0;
  uint64_t offset = 0;
  uint64_t data_length = 0;
  uint32_t tier = 0;  // v1::Tier; 0 if not sent
};

// Fields 1-4 and the tag and length of field 5; the caller sends exactly
// header.data_length payload bytes after it.
std::string EncodeFetchChunkHeader(const FetchChunkHeader& header);

struct DecodedFetchChunk {
  FetchChunkHeader header;
  // The payload as pieces of the input (no copy), in order.
  std::vector<absl::Span<const uint8_t>> data;
};

// Parses one serialized FetchChunk spread over `pieces`. INVALID_ARGUMENT if
// the bytes are not a well-formed FetchChunk.
absl::StatusOr<DecodedFetchChunk> DecodeFetchChunk(
    absl::Span<const absl::Span<const uint8_t>> pieces);

}  // namespace kvcache

#endif  // KVCACHE_PROTO_FETCH_CHUNK_CODEC_H_
