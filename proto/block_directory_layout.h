// The block directory (same-host path): a read-only shared table where the
// daemon lists the blocks that have host pages, so a local worker can copy a
// block out of the arena with no request to the daemon at all.
//
// Layout of the memfd, sent with LocalWelcome as a third fd and sealed like
// the arena (clients map it read-only):
//
//   DirectoryHeader | DirectorySlot[bucket_count * kDirectoryWays] |
//   uint32 next_page[page_count] | uint32 presence[presence_count]
//
// A block lives in one of the kDirectoryWays slots of bucket
// DirectoryBucket(ns, key) (a block whose bucket is full is simply not
// listed). Its bytes are arena pages first_page, next_page[first_page], ...
//
// Each slot is a seqlock. The daemon makes `seq` odd, changes the slot, and
// makes it even again; it withdraws a block (bumping `seq`) before that
// block's pages can be freed or written. A reader loads `seq` (even), reads
// the slot and copies the pages, then loads `seq` again: only if it did not
// change is the copy the block's bytes. Otherwise it falls back to a lease.
//
// The 32-bit word at kDirectoryCompleteOffset (inside the header's 64 bytes,
// read and written atomically) is 1 while the daemon lists every block it
// caches: no NVMe or GPU tier holds blocks the directory cannot list, and no
// block was ever left out for a full bucket. Then a key the directory does
// not list (in a consistent slot read) is a miss, and a lookup needs no
// request even when it misses. A wrong 1 could only cost misses, never bytes.
//
// The presence table (when presence_count > 0; older daemons leave it 0)
// counts, for each of its slots, the blocks the daemon caches in any tier
// (host, NVMe, GPU; listed or not) whose (ns, key) falls there
// (DirectoryPresenceSlot). The daemon adds one before a block enters its
// index and takes it away once it has left. A count of 0 means the key is not
// cached, so a lookup that misses needs no request even while the directory
// is not complete. Readers only ask "0 or not": a wrong count can cost a
// request or a miss, never bytes.
//
// The 32-bit word at kDirectoryHeartbeatOffset is the daemon's
// CLOCK_MONOTONIC in milliseconds (mod 2^32), renewed every
// kDirectoryHeartbeatMs. A worker answers from the directory (lookups and
// direct reads) only while it is fresher than kDirectoryStaleMs: a daemon
// that died, or was replaced by a new one, stops being answered for within
// about a second, and the worker's next request finds out why.
#ifndef KVCACHE_PROTO_BLOCK_DIRECTORY_LAYOUT_H_
#define KVCACHE_PROTO_BLOCK_DIRECTORY_LAYOUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>

namespace kvcache {

inline constexpr uint64_t kDirectoryMagic = 0x31524944'4356'4b00ull;  // "\0KVCDIR1"
inline constexpr uint32_t kDirectoryVersion = 1;
inline constexpr uint32_t kDirectoryWays = 4;
inline constexpr uint32_t kDirectoryNoPage = UINT32_MAX;
inline constexpr size_t kDirectoryKeyWords = 4;  // BlockKey::kMaxBytes / 8
inline constexpr size_t kDirectoryCompleteOffset = 56;  // after DirectoryHeader
inline constexpr size_t kDirectoryHeartbeatOffset = 60;
inline constexpr uint32_t kDirectoryHeartbeatMs = 100;
inline constexpr uint32_t kDirectoryStaleMs = 1000;

// CLOCK_MONOTONIC in milliseconds, mod 2^32: the same clock in every process
// of the host.
inline uint32_t DirectoryClockMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint32_t>(static_cast<uint64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000);
}

struct DirectoryHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t ways;
  uint32_t bucket_count;  // a power of two
  uint32_t page_count;    // of the arena
  uint32_t page_bytes;
  uint32_t presence_count;  // a power of two, or 0: no presence table
  uint64_t slots_offset;    // from the start of the mapping
  uint64_t next_offset;     // the presence table follows next_page
  uint64_t total_bytes;
};
static_assert(sizeof(DirectoryHeader) <= kDirectoryCompleteOffset);

// Every field is an atomic (lock-free, so address-free across processes):
// readers race with the daemon's writes by design and validate with `seq`.
struct alignas(64) DirectorySlot {
  std::atomic<uint64_t> seq;  // odd while the daemon changes the slot
  std::atomic<uint32_t> ns;
  std::atomic<uint32_t> first_page;
  std::atomic<uint64_t> size;      // the block's bytes
  std::atomic<uint32_t> key_size;  // 0: the slot is empty
  std::atomic<uint32_t> reserved;
  std::atomic<uint64_t> key[kDirectoryKeyWords];  // zero-padded
};
static_assert(sizeof(DirectorySlot) == 64);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

// A key as the slot stores it: its bytes zero-padded to 32.
struct DirectoryKey {
  uint32_t size = 0;
  uint64_t words[kDirectoryKeyWords] = {};

  // REQUIRES: n <= 8 * kDirectoryKeyWords.
  DirectoryKey(const uint8_t* bytes, size_t n) : size(static_cast<uint32_t>(n)) {
    std::memcpy(words, bytes, n);
  }
};

// FNV-1a over the namespace id and the padded key. Both sides must agree on
// it exactly, so it is defined here.
inline uint64_t DirectoryHash(uint32_t ns, const DirectoryKey& key) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](uint64_t word) {
    for (int i = 0; i < 8; ++i) {
      h ^= (word >> (8 * i)) & 0xff;
      h *= 0x100000001b3ull;
    }
  };
  mix(ns);
  mix(key.size);
  for (uint64_t w : key.words) mix(w);
  return h;
}

// The bucket of (ns, key): the hash, folded.
inline uint32_t DirectoryBucket(uint32_t ns, const DirectoryKey& key, uint32_t bucket_count) {
  const uint64_t h = DirectoryHash(ns, key);
  return static_cast<uint32_t>(h ^ (h >> 32)) & (bucket_count - 1);
}

// The presence slot of (ns, key): the hash's top bits after a multiply, so
// keys that share a bucket rarely share a presence slot.
inline uint32_t DirectoryPresenceSlot(uint32_t ns, const DirectoryKey& key,
                                      uint32_t presence_count) {
  const uint64_t h = DirectoryHash(ns, key) * 0x9e3779b97f4a7c15ull;
  return static_cast<uint32_t>(h >> 32) & (presence_count - 1);
}

}  // namespace kvcache

#endif  // KVCACHE_PROTO_BLOCK_DIRECTORY_LAYOUT_H_
