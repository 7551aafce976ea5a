#include "tools/kvbench_replica_latency.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/cluster_client.h"
#include "key/key_schema.h"
#include "tools/daemon_process.h"

namespace kvcache {
namespace {

constexpr int kChainBlocks = 8;
constexpr size_t kBlock = 256 << 10;
constexpr int kChainsPerTurn = 32;

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

double Median(std::vector<double> v) { return Percentile(std::move(v), 0.5); }

struct Turn {
  std::vector<double> put_us, fetch_us;
};

// Puts kChainsPerTurn fresh chains through `cluster` and fetches each back,
// timing every call.
absl::StatusOr<Turn> TakeTurn(ClusterClient& cluster, const KeySchema& schema, int first_chain) {
  Turn turn;
  std::vector<std::vector<BlockKey>> chains;
  std::vector<std::vector<PutBlock>> payloads;
  for (int c = first_chain; c < first_chain + kChainsPerTurn; ++c) {
    std::vector<uint32_t> tokens(kChainBlocks * schema.tokens_per_block);
    for (size_t t = 0; t < tokens.size(); ++t) tokens[t] = static_cast<uint32_t>(c * 100003 + t);
    absl::StatusOr<std::vector<BlockKey>> keys = ChainKeys(schema, tokens);
    if (!keys.ok()) return keys.status();
    std::vector<PutBlock> put;
    for (size_t b = 0; b < keys->size(); ++b) {
      put.push_back({(*keys)[b], std::string(kBlock, static_cast<char>(c * 31 + b))});
    }
    chains.push_back(*keys);
    payloads.push_back(std::move(put));
  }
  const std::string ns = schema.NamespaceName();
  for (const std::vector<PutBlock>& put : payloads) {
    const absl::Time start = absl::Now();
    const std::vector<v1::PutOutcome> outcomes = cluster.Put(ns, BlockKey(), put);
    turn.put_us.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
    for (v1::PutOutcome o : outcomes) {
      if (o != v1::PUT_STORED) return absl::InternalError("a replica latency put was not stored");
    }
  }
  std::vector<std::string> bufs(kChainBlocks, std::string(kBlock, '\0'));
  for (size_t c = 0; c < chains.size(); ++c) {
    std::vector<FetchTarget> targets;
    for (int b = 0; b < kChainBlocks; ++b) {
      targets.push_back(
          {chains[c][b], absl::MakeSpan(reinterpret_cast<uint8_t*>(bufs[b].data()), kBlock)});
    }
    const absl::Time start = absl::Now();
    const FetchResult got = cluster.Fetch(ns, targets);
    turn.fetch_us.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
    if (got.blocks != static_cast<size_t>(kChainBlocks)) {
      return absl::InternalError(absl::StrCat("a replica latency fetch returned ", got.blocks,
                                              " of ", kChainBlocks, " blocks: ",
                                              got.status.ToString()));
    }
    for (int b = 0; b < kChainBlocks; ++b) {
      if (bufs[b] != payloads[c][b].payload) {
        return absl::InternalError("a replica latency fetch returned wrong bytes");
      }
    }
  }
  return turn;
}

}  // namespace

absl::StatusOr<ReplicaLatency> MeasureReplicaLatency(const std::string& kvstored, int nodes,
                                                     int rounds) {
  std::vector<std::unique_ptr<DaemonProcess>> daemons;
  std::vector<std::string> peers;
  for (int n = 0; n < nodes; ++n) {
    auto d = DaemonProcess::Start(kvstored, {"--host_capacity=256MiB", "--local_socket=off"});
    if (!d.ok()) return d.status();
    peers.push_back((*d)->address());
    daemons.push_back(std::move(*d));
  }
  std::unique_ptr<ClusterClient> clusters[2];
  for (int r = 0; r < 2; ++r) {
    ClusterOptions options;
    options.peers = peers;
    options.node.use_local_path = false;  // the network path, as remote workers use it
    options.replicas = r + 1;
    absl::StatusOr<std::unique_ptr<ClusterClient>> made = ClusterClient::Create(options);
    if (!made.ok()) return made.status();
    clusters[r] = std::move(*made);
  }
  KeySchema schema;
  schema.model_id = "kvbench-replica-latency";
  std::vector<double> put50[2], put99[2], fetch50[2], fetch99[2];
  int next_chain = 0;
  for (int round = 0; round < std::max(rounds, 1); ++round) {
    for (int i = 0; i < 2; ++i) {
      const int r = (round + i) % 2;  // who goes first alternates
      absl::StatusOr<Turn> turn = TakeTurn(*clusters[r], schema, next_chain);
      next_chain += kChainsPerTurn;
      if (!turn.ok()) return turn.status();
      put50[r].push_back(Percentile(turn->put_us, 0.5));
      put99[r].push_back(Percentile(turn->put_us, 0.99));
      fetch50[r].push_back(Percentile(turn->fetch_us, 0.5));
      fetch99[r].push_back(Percentile(turn->fetch_us, 0.99));
    }
  }
  ReplicaLatency out;
  for (int r = 0; r < 2; ++r) {
    out.put_p50_us[r] = Median(put50[r]);
    out.put_p99_us[r] = Median(put99[r]);
    out.fetch_p50_us[r] = Median(fetch50[r]);
    out.fetch_p99_us[r] = Median(fetch99[r]);
  }
  out.chain_blocks = kChainBlocks;
  out.block_bytes = kBlock;
  return out;
}

}  // namespace kvcache
