// Replays a trace through the real client against a running kvstored: for
// each request, look up its chain, fetch the leading cached run, put the rest
// (the way an inference worker uses the tier), with several workers issuing
// requests at the trace's arrival times, compressed by `speedup`.
//
// Block i of a request is keyed as a worker would key it: each hash id
// stands for 512 token ids derived from the id, and the prompt's tokens are
// hashed into a chain with the client's KeySchema. Payloads are derived from
// the id too, so every fetched byte is checked.
#ifndef KVCACHE_TOOLS_TRACE_TRACE_REPLAY_H_
#define KVCACHE_TOOLS_TRACE_TRACE_REPLAY_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/cluster_client.h"
#include "key/block_key.h"
#include "key/key_schema.h"
#include "tools/trace/prefix_sim.h"
#include "tools/trace/trace.h"

namespace kvcache {

// The key schema replays use: 512 tokens per block, as in the trace.
KeySchema TraceSchema();

// Every request's chain of keys (computed once, reused across replays).
absl::StatusOr<std::vector<std::vector<BlockKey>>> TraceKeys(
    const std::vector<TraceRequest>& trace);

// The payload of the block with this hash id: `size` bytes derived from it.
void TracePayload(uint64_t hash_id, size_t size, uint8_t* out);

struct ReplayOptions {
  std::string address;  // kvstored's gRPC address
  // Instead: several daemons used as one tier through ClusterClient, each
  // block on `replicas` of them.
  std::vector<std::string> peers;
  // Or: the cluster's members read from etcd (endpoints).
  std::string etcd;
  int replicas = ClusterOptions().replicas;
  uint64_t payload_bytes = 4096;
  int workers = 8;
  // Trace time runs this many times faster; 0 issues requests back to back.
  double speedup = 0;
  // Put a prompt's last block with evict_first when the prompt does not
  // fill it (input_length is not a multiple of 512), as an engine that
  // knows its partial blocks would.
  bool mark_partial_tail = true;
  // Called now and then from one thread with requests done so far.
  std::function<void(size_t done)> progress;
};

struct ReplayResult {
  HitCount hits;               // blocks fetched in each request's leading run
  uint64_t requests = 0;
  uint64_t failed_calls = 0;   // lookups, fetches or puts that returned an error
  uint64_t wrong_blocks = 0;   // fetched blocks whose bytes were not the block's
  uint64_t fetched_bytes = 0;
  double seconds = 0;
  // Per call, in microseconds; fetches only for requests with a hit.
  std::vector<double> lookup_us, fetch_us;
  uint64_t local_path_blocks = 0;  // fetched or put over the same-host path
  uint64_t path_fallbacks = 0;     // calls that fell back to a slower path
};

// INVALID_ARGUMENT for bad options; UNAVAILABLE if no client can be made.
// Call failures do not stop the replay: they are counted (as misses).
absl::StatusOr<ReplayResult> ReplayTrace(const std::vector<TraceRequest>& trace,
                                         const std::vector<std::vector<BlockKey>>& keys,
                                         const ReplayOptions& options);

// The q-quantile (0..1) of `v` (sorted in place); 0 for an empty vector.
double Quantile(std::vector<double>& v, double q);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_TRACE_TRACE_REPLAY_H_
