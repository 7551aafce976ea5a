// Client's lookups: the same-host block directory first, then the daemon
// over the data port, then over gRPC. Each path continues the scan where
// the one before stopped, since the cache is prefix-closed and the daemon
// scans to the first miss.
#include "client/client.h"

namespace kvcache {

LookupResult Client::Lookup(const std::string& ns, absl::Span<const BlockKey> keys) {
  lookups_.fetch_add(1, std::memory_order_relaxed);
  LookupResult result;
  const Transport::Outcome answer = OverPaths([&](Transport& path) {
    const size_t before = result.hits;
    const absl::Time start = absl::Now();
    Transport::Outcome outcome = path.Lookup(ns, keys.subspan(before), &result);
    // A path that passed the question on untouched did not take part.
    if (!outcome.partial || result.hits > before) {
      metrics_.Record(path.path(), ClientOp::kLookup, absl::Now() - start, result.hits - before,
                      0);
    }
    if (path.path() == ClientPath::kSameHost && !outcome.partial && !outcome.transport_failed) {
      direct_lookups_.fetch_add(1, std::memory_order_relaxed);
    }
    return outcome;
  });
  result.status = answer.status;
  metrics_.CountLookup(keys.size(), result.hits, result.status);
  if (!result.status.ok()) lookup_errors_.fetch_add(1, std::memory_order_relaxed);
  return result;
}

LookupResult Client::LookupTokens(const KeySchema& schema, absl::Span<const uint32_t> tokens) {
  absl::StatusOr<std::vector<BlockKey>> keys = ChainKeys(schema, tokens);
  if (!keys.ok()) {
    LookupResult miss;
    miss.status = keys.status();
    return miss;
  }
  return Lookup(schema.NamespaceName(), *keys);
}

}  // namespace kvcache
