// Framing of the same-host path (proto/kvcache/v1/local.proto): every message
// on the Unix-domain socket is u32 type | u32 length | body, little-endian.
#ifndef KVCACHE_PROTO_LOCAL_WIRE_H_
#define KVCACHE_PROTO_LOCAL_WIRE_H_

#include <cstdint>

namespace kvcache {

enum class LocalMessage : uint32_t {
  kWelcome = 1,      // daemon -> client, with the arena and staging fds; body LocalWelcome
  kFetchLease = 2,   // client -> daemon; body FetchRequest; reply kLease
  kPutBegin = 3,     // client -> daemon; body PutBlockHeader; reply kLease
  kPutCommit = 4,    // client -> daemon; body LocalRelease; reply kResult
  kRelease = 5,      // client -> daemon; body LocalRelease; no reply
  kLease = 6,        // daemon -> client; body LocalLease
  kResult = 7,       // daemon -> client; body LocalResult
  kRefused = 8,      // daemon -> client, then close; body LocalResult
  kDirectReads = 9,  // client -> daemon; body DirectReadReport; no reply
  kGpuLease = 10,    // client -> daemon; body FetchRequest; reply kLease (GPU pool extents)
  kPutStaged = 11,   // client -> daemon; body LocalPutStaged; reply kResult
};

inline constexpr uint32_t kMaxLocalMessageBytes = 4u << 20;

}  // namespace kvcache

#endif  // KVCACHE_PROTO_LOCAL_WIRE_H_
