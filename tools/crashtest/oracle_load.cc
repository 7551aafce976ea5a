#include "tools/crashtest/oracle_load.h"

#include <algorithm>
#include <vector>

#include "tools/crashtest/oracle.h"

namespace kvcache {

void ReadCheckAndFill(Client& client, const std::string& ns, uint32_t prompt,
                      uint64_t block_bytes, bool put_rest, OracleCounters& counters) {
  const std::vector<BlockKey> chain = CrashTestChain(prompt);
  const LookupResult hit = client.Lookup(ns, chain);
  counters.lookups.fetch_add(1);
  const size_t hits = std::min(hit.hits, chain.size());
  std::vector<std::string> buffers(hits, std::string(block_bytes, '\0'));
  std::vector<FetchTarget> targets;
  for (size_t b = 0; b < hits; ++b) {
    targets.push_back({chain[b], {reinterpret_cast<uint8_t*>(buffers[b].data()), block_bytes}});
  }
  const FetchResult got = hits == 0 ? FetchResult{} : client.Fetch(ns, targets);
  for (size_t b = 0; b < got.blocks && b < hits; ++b) {
    counters.verified.fetch_add(1);
    if (buffers[b] != CrashTestPayload(ns, chain[b], block_bytes)) counters.wrong.fetch_add(1);
  }
  if (!put_rest || got.blocks >= chain.size()) return;
  std::vector<PutBlock> rest;
  for (size_t b = got.blocks; b < chain.size(); ++b) {
    rest.push_back({chain[b], CrashTestPayload(ns, chain[b], block_bytes)});
  }
  absl::StatusOr<std::vector<v1::PutOutcome>> outcomes =
      client.Put(ns, got.blocks == 0 ? BlockKey() : chain[got.blocks - 1], std::move(rest));
  if (outcomes.ok()) counters.put.fetch_add(outcomes->size());
}

ClientOptions OracleClientOptions(const std::string& address, int path) {
  ClientOptions o;
  o.address = address;
  o.deadline = absl::Seconds(10);
  o.use_local_path = path == 0;
  o.use_data_port = path != 2;
  return o;
}

}  // namespace kvcache
