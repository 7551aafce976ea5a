// What a client asks of a daemon and what it gets back, on any path: the
// targets of a fetch, the blocks of a put, the answer to a lookup. Its own
// header so that the transports (client/transport.h) need not include the
// client that drives them.
#ifndef KVCACHE_CLIENT_REQUESTS_H_
#define KVCACHE_CLIENT_REQUESTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "key/block_key.h"
#include "kvcache/v1/kvcache.pb.h"

namespace kvcache {

struct LookupResult {
  // Leading keys cached. When status is not OK this still counts those the
  // same-host block directory listed (known cached; zero otherwise).
  size_t hits = 0;
  std::vector<uint64_t> sizes;  // size of each hit block
  std::vector<v1::Tier> tiers;  // the fastest tier holding each hit block
  absl::Status status;          // why this is a miss, if the call failed
};

// Where one fetched block (or a byte range of it) goes. The range read is
// [offset, offset + dest.size()); dest is not owned.
struct FetchTarget {
  BlockKey key;
  absl::Span<uint8_t> dest;
  uint64_t offset = 0;
};

struct FetchResult {
  size_t blocks = 0;     // leading targets completely written (and verified)
  absl::Status status;   // the first error, if any
  // For each of those blocks, the daemon tier it came from: TIER_NVME when
  // this fetch read it back from NVMe, TIER_HOST otherwise.
  std::vector<v1::Tier> tiers;
};

struct PutBlock {
  BlockKey key;
  std::string payload;
  // Instead of `payload`: bytes the caller owns and leaves unchanged until
  // Put returns (an engine's KV pages, put with no copy). Used when not
  // empty. PutAsync copies them into `payload` before it returns.
  absl::Span<const uint8_t> borrowed;
  // Set for a block later prompts are unlikely to repeat, such as a prompt's
  // last, partial block: the daemon evicts it before others until it is read.
  // On the conversation trace this lifts the hit ratio 0.02-0.72 points
  // (docs/BENCHMARKS.md).
  bool evict_first = false;
  // Store it as a root, whatever comes before it in the call: a cluster
  // places each block on its own node, so its parent may live elsewhere.
  bool root = false;

  // The block's bytes: `borrowed` if set, else `payload`.
  absl::string_view bytes() const {
    if (!borrowed.empty()) return {reinterpret_cast<const char*>(borrowed.data()), borrowed.size()};
    return payload;
  }
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_REQUESTS_H_
