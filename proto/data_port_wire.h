// The bulk data port: a plain TCP protocol beside gRPC that carries Fetch
// replies as raw bytes, so the daemon can writev straight from arena pages and
// the client can recv straight into the caller's buffer. gRPC stays the
// control plane (the client learns the port from Hello) and the fallback.
//
// Version 1, all integers little-endian. A connection serves any number of
// requests; replies come in request order, so a client may pipeline puts.
//
//   fetch:    u32 kDataPortMagic | u32 body length | body (a v1.FetchRequest)
//   reply:    zero or more CHUNK frames, then one END frame
//     CHUNK:  u32 kChunkFrame | u32 item_index | u64 block_size
//             | u64 block_checksum | u64 offset | u64 length | u32 tier
//             | length bytes
//     END:    u32 kEndFrame | u32 status code (gRPC numbering)
//             | u32 message length | message
//
//   put:      u32 kDataPortPutMagic | u32 header length
//             | header (a v1.PutBlockHeader) | header.size payload bytes
//   reply:    u32 kPutResultFrame | u32 status code | u32 outcome
//             (a v1.PutOutcome) | u32 message length | message
//
//   lookup:   u32 kDataPortLookupMagic | u32 body length
//             | body (a v1.LookupRequest)
//   reply:    u32 kLookupResultFrame | u32 status code | u32 length
//             | a v1.LookupResponse if the status is OK, else the message
//   Daemons that serve it say so in HelloResponse.data_port_lookup; an
//   older one closes the connection at the unknown magic.
//
//   auth:     u32 kDataPortAuthMagic | u32 token length | token
//   or:       u32 kDataPortAuthForMagic | u32 token length | u32 tenant length
//             | token | tenant   (an admin acting for that tenant)
//   reply:    u32 kAuthResultFrame | u32 status code | u32 message length
//             | message
//   The first request of a connection to a daemon with authentication on
//   (kvstored --token_file), unless its TLS client certificate names an
//   identity; the token is what gRPC calls carry as "Bearer <token>". Any
//   other request before an identity is known closes the connection. A
//   daemon with TLS on (kvstored --tls_cert) speaks all of this inside TLS
//   1.3, after the handshake, and nothing in the clear.
#ifndef KVCACHE_PROTO_DATA_PORT_WIRE_H_
#define KVCACHE_PROTO_DATA_PORT_WIRE_H_

#include <cstdint>
#include <cstring>

#include "proto/fetch_chunk_codec.h"

namespace kvcache {

inline constexpr uint32_t kDataPortMagic = 0x3144564b;  // "KVD1"
inline constexpr uint32_t kDataPortPutMagic = 0x3150564b;  // "KVP1"
inline constexpr uint32_t kChunkFrame = 1;
inline constexpr uint32_t kEndFrame = 2;
inline constexpr uint32_t kPutResultFrame = 3;
inline constexpr uint32_t kDataPortLookupMagic = 0x314c564b;  // "KVL1"
inline constexpr uint32_t kLookupResultFrame = 4;
inline constexpr uint32_t kDataPortAuthMagic = 0x3141564b;  // "KVA1"
inline constexpr uint32_t kDataPortAuthForMagic = 0x3241564b;  // "KVA2"
inline constexpr uint32_t kMaxAuthTenantBytes = 255;
inline constexpr uint32_t kAuthResultFrame = 5;
inline constexpr uint32_t kMaxAuthTokenBytes = 4096;
inline constexpr size_t kLookupResultFrameHeaderBytes = 3 * 4;
// A LookupResponse of the most keys a request may name (packed: ~10 bytes
// each) fits many times over.
inline constexpr uint32_t kMaxLookupResponseBytes = 16u << 20;
inline constexpr uint32_t kMaxPutHeaderBytes = 4096;
inline constexpr size_t kPutResultFrameHeaderBytes = 4 * 4;
inline constexpr uint32_t kMaxDataPortRequestBytes = 4u << 20;
inline constexpr size_t kChunkFrameHeaderBytes = 4 + 4 + 8 * 4 + 4;
inline constexpr size_t kEndFrameHeaderBytes = 4 + 4 + 4;
inline constexpr uint32_t kMaxEndMessageBytes = 4096;

// Writes a CHUNK frame header. REQUIRES: little-endian host (x86-64, arm64).
inline void EncodeChunkFrameHeader(const FetchChunkHeader& h, uint8_t out[kChunkFrameHeaderBytes]) {
  const uint32_t kind = kChunkFrame;
  std::memcpy(out, &kind, 4);
  std::memcpy(out + 4, &h.item_index, 4);
  std::memcpy(out + 8, &h.block_size, 8);
  std::memcpy(out + 16, &h.block_checksum, 8);
  std::memcpy(out + 24, &h.offset, 8);
  std::memcpy(out + 32, &h.data_length, 8);
  std::memcpy(out + 40, &h.tier, 4);
}

// Reads the fields after `kind` of a CHUNK frame header.
inline FetchChunkHeader DecodeChunkFrameHeader(const uint8_t in[kChunkFrameHeaderBytes]) {
  FetchChunkHeader h;
  std::memcpy(&h.item_index, in + 4, 4);
  std::memcpy(&h.block_size, in + 8, 8);
  std::memcpy(&h.block_checksum, in + 16, 8);
  std::memcpy(&h.offset, in + 24, 8);
  std::memcpy(&h.data_length, in + 32, 8);
  std::memcpy(&h.tier, in + 40, 4);
  return h;
}

}  // namespace kvcache

#endif  // KVCACHE_PROTO_DATA_PORT_WIRE_H_
