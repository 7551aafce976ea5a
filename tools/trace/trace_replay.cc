#include "tools/trace/trace_replay.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include "absl/time/clock.h"
#include "client/client.h"
#include "client/cluster_client.h"
#include "common/mutex.h"

namespace kvcache {
namespace {

constexpr uint32_t kTokensPerBlock = 512;

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// What one worker saw; merged at the end.
struct WorkerTally {
  HitCount hits;
  uint64_t requests = 0, failed_calls = 0, wrong_blocks = 0, fetched_bytes = 0;
  std::vector<double> lookup_us, fetch_us;
};

// Stores a request's missing blocks: as a chain on one daemon, or each on its
// node in a cluster. False if the call failed.
bool PutMissing(Client& client, const std::string& ns, const BlockKey& parent,
                const std::vector<PutBlock>& blocks) {
  return client.Put(ns, parent, blocks).ok();
}
bool PutMissing(ClusterClient& cluster, const std::string& ns, const BlockKey& parent,
                const std::vector<PutBlock>& blocks) {
  for (v1::PutOutcome o : cluster.Put(ns, parent, blocks)) {
    if (o == v1::PUT_OUTCOME_UNSPECIFIED) return false;
  }
  return true;
}

template <typename AnyClient>
void ServeRequest(AnyClient& client, const std::string& ns, const TraceRequest& request,
                  const std::vector<BlockKey>& keys, uint64_t payload_bytes, bool mark_partial_tail,
                  std::vector<uint8_t>& buffer, WorkerTally& tally) {
  const size_t n = keys.size();
  if (n == 0) return;
  tally.hits.prompt_blocks += n;
  ++tally.requests;
  absl::Time t = absl::Now();
  LookupResult lookup = client.Lookup(ns, keys);
  tally.lookup_us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t));
  if (!lookup.status.ok()) ++tally.failed_calls;

  size_t served = 0;
  if (lookup.hits > 0) {
    buffer.resize(lookup.hits * payload_bytes);
    std::vector<FetchTarget> targets;
    for (size_t i = 0; i < lookup.hits; ++i) {
      targets.push_back({keys[i], {buffer.data() + i * payload_bytes, payload_bytes}});
    }
    t = absl::Now();
    FetchResult fetched = client.Fetch(ns, targets);
    tally.fetch_us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t));
    // A miss here (evicted since the lookup) is a normal answer, not a failure.
    if (!fetched.status.ok() && fetched.status.code() != absl::StatusCode::kNotFound) {
      ++tally.failed_calls;
    }
    served = fetched.blocks;
    std::vector<uint8_t> expected(payload_bytes);
    for (size_t i = 0; i < served; ++i) {
      TracePayload(request.hash_ids[i], payload_bytes, expected.data());
      if (std::memcmp(expected.data(), buffer.data() + i * payload_bytes, payload_bytes) != 0) {
        ++tally.wrong_blocks;
      }
    }
    tally.fetched_bytes += served * payload_bytes;
  }
  tally.hits.hit_blocks += served;

  if (served == n) return;
  std::vector<PutBlock> fresh;
  for (size_t i = served; i < n; ++i) {
    std::string payload(payload_bytes, '\0');
    TracePayload(request.hash_ids[i], payload_bytes, reinterpret_cast<uint8_t*>(payload.data()));
    fresh.push_back({keys[i], std::move(payload)});
  }
  // The prompt's last block is partial unless the prompt fills it: later
  // prompts almost never repeat it (206 of 12,009 in the conversation trace).
  if (mark_partial_tail && request.input_length % kTokensPerBlock != 0) {
    fresh.back().evict_first = true;
  }
  if (!PutMissing(client, ns, served == 0 ? BlockKey() : keys[served - 1], fresh)) {
    ++tally.failed_calls;
  }
}

}  // namespace

KeySchema TraceSchema() {
  KeySchema s;
  s.model_id = "trace-replay";
  s.tokens_per_block = kTokensPerBlock;
  return s;
}

absl::StatusOr<std::vector<std::vector<BlockKey>>> TraceKeys(
    const std::vector<TraceRequest>& trace) {
  const KeySchema schema = TraceSchema();
  std::vector<std::vector<BlockKey>> keys;
  keys.reserve(trace.size());
  std::vector<uint32_t> tokens;
  for (const TraceRequest& r : trace) {
    tokens.clear();
    for (uint64_t id : r.hash_ids) {
      for (uint32_t j = 0; j < kTokensPerBlock; ++j) {
        tokens.push_back(static_cast<uint32_t>(SplitMix(id * kTokensPerBlock + j)));
      }
    }
    absl::StatusOr<std::vector<BlockKey>> chain = ChainKeys(schema, tokens);
    if (!chain.ok()) return chain.status();
    keys.push_back(std::move(*chain));
  }
  return keys;
}

void TracePayload(uint64_t hash_id, size_t size, uint8_t* out) {
  uint64_t x = SplitMix(hash_id ^ 0x5eedull);
  for (size_t i = 0; i < size; i += 8) {
    x = SplitMix(x);
    std::memcpy(out + i, &x, std::min<size_t>(8, size - i));
  }
}

absl::StatusOr<ReplayResult> ReplayTrace(const std::vector<TraceRequest>& trace,
                                         const std::vector<std::vector<BlockKey>>& keys,
                                         const ReplayOptions& options) {
  if (keys.size() != trace.size()) return absl::InvalidArgumentError("keys do not match trace");
  if (options.workers < 1 || options.payload_bytes == 0 || options.speedup < 0) {
    return absl::InvalidArgumentError("replay needs workers >= 1, payload > 0, speedup >= 0");
  }
  const std::string ns = TraceSchema().NamespaceName();
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::unique_ptr<ClusterClient>> clusters;
  for (int w = 0; w < options.workers; ++w) {
    ClientOptions c;
    c.address = options.address;
    if (!options.peers.empty() || !options.etcd.empty()) {
      ClusterOptions cluster;
      cluster.peers = options.peers;
      cluster.etcd = options.etcd;
      cluster.node = c;
      cluster.replicas = options.replicas;
      absl::StatusOr<std::unique_ptr<ClusterClient>> made = ClusterClient::Create(cluster);
      if (!made.ok()) return absl::UnavailableError(made.status().message());
      clusters.push_back(std::move(*made));
      continue;
    }
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(c);
    if (!client.ok()) return absl::UnavailableError(client.status().message());
    clients.push_back(std::move(*client));
  }
  std::vector<WorkerTally> tallies(options.workers);
  std::atomic<size_t> next{0}, done{0};
  const absl::Time start = absl::Now();
  std::vector<std::thread> workers;
  for (int w = 0; w < options.workers; ++w) {
    workers.emplace_back([&, w] {
      std::vector<uint8_t> buffer;
      for (size_t r = next++; r < trace.size(); r = next++) {
        if (options.speedup > 0) {
          absl::SleepFor(start + absl::Milliseconds(trace[r].timestamp_ms / options.speedup) -
                         absl::Now());
        }
        if (clusters.empty()) {
          ServeRequest(*clients[w], ns, trace[r], keys[r], options.payload_bytes,
                       options.mark_partial_tail, buffer, tallies[w]);
        } else {
          ServeRequest(*clusters[w], ns, trace[r], keys[r], options.payload_bytes,
                       options.mark_partial_tail, buffer, tallies[w]);
        }
        ++done;
      }
    });
  }
  if (options.progress) {
    while (done.load() < trace.size()) {
      options.progress(done.load());
      absl::SleepFor(absl::Milliseconds(100));
    }
    options.progress(done.load());
  }
  for (std::thread& t : workers) t.join();

  ReplayResult result;
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (int w = 0; w < options.workers; ++w) {
    const WorkerTally& t = tallies[w];
    result.hits.prompt_blocks += t.hits.prompt_blocks;
    result.hits.hit_blocks += t.hits.hit_blocks;
    result.requests += t.requests;
    result.failed_calls += t.failed_calls;
    result.wrong_blocks += t.wrong_blocks;
    result.fetched_bytes += t.fetched_bytes;
    result.lookup_us.insert(result.lookup_us.end(), t.lookup_us.begin(), t.lookup_us.end());
    result.fetch_us.insert(result.fetch_us.end(), t.fetch_us.begin(), t.fetch_us.end());
    if (clients.empty()) continue;
    const ClientCounters c = clients[w]->counters();
    result.local_path_blocks += c.local_path_blocks;
    result.path_fallbacks += c.data_port_fallbacks + c.local_path_fallbacks;
  }
  return result;
}

double Quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + i, v.end());
  return v[i];
}

}  // namespace kvcache
