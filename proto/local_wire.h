// Framing of the same-host path (proto/kvcache/v1/local.proto): every message
// on the Unix-domain socket is u32 type | u32 length | body, little-endian.
// A request's type word may carry, in its high 16 bits, the CPU its sender
// waits on for the answer, plus one (0: not said); only to a daemon whose
// welcome set follows_cpu (common/cpu_pin.h says why).
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

// The type word of a message of `type` whose sender waits on `waiting_cpu`
// (-1, or one past 65534: not said).
inline uint32_t LocalTypeWord(LocalMessage type, int waiting_cpu) {
  const uint32_t cpu = waiting_cpu >= 0 && waiting_cpu < 0xffff ? waiting_cpu + 1 : 0;
  return static_cast<uint32_t>(type) | cpu << 16;
}
inline LocalMessage LocalTypeOf(uint32_t word) { return static_cast<LocalMessage>(word & 0xffff); }
// -1 if the word says none.
inline int LocalWaitingCpuOf(uint32_t word) { return static_cast<int>(word >> 16) - 1; }

}  // namespace kvcache

#endif  // KVCACHE_PROTO_LOCAL_WIRE_H_
