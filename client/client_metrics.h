// What a worker's client library saw of the cache: per path (same-host,
// data port, gRPC) and operation, the requests, blocks, bytes and latency;
// lookup keys and hits; and every lookup or fetch that ended short, by the
// reason the client could tell. The daemon's /metrics cannot see these: a
// same-host direct lookup never reaches it, and a node that is down counts
// nothing at all.
//
// Thread safety: ClientMetrics may be recorded into and read from any
// thread; ClientCounters is a plain copy.
#ifndef KVCACHE_CLIENT_CLIENT_METRICS_H_
#define KVCACHE_CLIENT_CLIENT_METRICS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/latency_histogram.h"

namespace kvcache {

enum class ClientPath { kSameHost, kDataPort, kGrpc, kCount };
enum class ClientOp { kLookup, kFetch, kPut, kCount };
// Why a lookup or fetch returned fewer blocks than asked for.
enum class ClientMiss {
  kNotCached,  // the daemon answered: the block is not cached (its /metrics says why)
  kNodeDown,   // no daemon answered (UNAVAILABLE), or every replica's node is down
  kDeadline,   // the call's deadline passed
  kError,      // any other failure (a malformed reply, a checksum mismatch, ...)
  kCount
};

inline constexpr size_t kClientPaths = static_cast<size_t>(ClientPath::kCount);
inline constexpr size_t kClientOps = static_cast<size_t>(ClientOp::kCount);
inline constexpr size_t kClientMisses = static_cast<size_t>(ClientMiss::kCount);

// "same_host", "data_port", "grpc"; "lookup", "fetch", "put";
// "not_cached", "node_down", "deadline", "error".
const char* ClientPathName(ClientPath path);
const char* ClientOpName(ClientOp op);
const char* ClientMissName(ClientMiss miss);

// The reason a call that ended with `status` (OK or NOT_FOUND: a plain miss)
// returned fewer blocks than asked for.
ClientMiss MissOf(const absl::Status& status);

// One path and operation's figures.
struct PathFigures {
  uint64_t requests = 0;  // attempts on this path (a fallback is one more on the next)
  uint64_t blocks = 0;    // blocks they found, moved or stored
  uint64_t bytes = 0;     // payload bytes they moved
  LatencyHistogram::Snapshot latency;

  PathFigures& operator+=(const PathFigures& other);
};

// A copy of the figures, as Client::counters() and the Python binding's
// counters() return them.
struct ClientFigures {
  uint64_t lookup_keys = 0;
  uint64_t lookup_hit_keys = 0;
  std::array<uint64_t, kClientMisses> lookup_misses{};  // by ClientMiss
  std::array<uint64_t, kClientMisses> fetch_misses{};
  PathFigures paths[kClientPaths][kClientOps];

  const PathFigures& at(ClientPath path, ClientOp op) const {
    return paths[static_cast<size_t>(path)][static_cast<size_t>(op)];
  }
  ClientFigures& operator+=(const ClientFigures& other);
};

class ClientMetrics {
 public:
  // One attempt on a path: how long it took, and the blocks and bytes it
  // found, moved or stored.
  void Record(ClientPath path, ClientOp op, absl::Duration took, uint64_t blocks, uint64_t bytes);
  // A lookup of `keys` keys that found `hits`, and, if short, why.
  void CountLookup(size_t keys, size_t hits, const absl::Status& status);
  void CountLookup(size_t keys, size_t hits, ClientMiss why);
  // A fetch that returned fewer blocks than asked for.
  void CountFetchMiss(ClientMiss why) {
    fetch_misses_[static_cast<size_t>(why)].fetch_add(1, std::memory_order_relaxed);
  }

  ClientFigures Take() const;

 private:
  struct Path {
    std::atomic<uint64_t> requests{0}, blocks{0}, bytes{0};
    LatencyHistogram latency;
  };
  Path paths_[kClientPaths][kClientOps];
  std::atomic<uint64_t> lookup_keys_{0}, lookup_hit_keys_{0};
  std::array<std::atomic<uint64_t>, kClientMisses> lookup_misses_{};
  std::array<std::atomic<uint64_t>, kClientMisses> fetch_misses_{};
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_CLIENT_METRICS_H_
