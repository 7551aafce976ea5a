#include "tools/kvbench_cluster.h"
#include "tools/kvbench_failure.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <numeric>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/byte_size.h"
#include "grpcpp/grpcpp.h"
#include "kvcache/v1/kvcache.grpc.pb.h"
#include "tools/daemon_process.h"
#include "tools/kvbench_replica_latency.h"
#include "tools/progress_bar.h"
#include "client/cluster_client.h"
#include "key/key_schema.h"
#include "tools/trace/placement_study.h"
#include "tools/trace/trace_replay.h"

ABSL_DECLARE_FLAG(std::string, trace);
ABSL_DECLARE_FLAG(std::string, payload);
ABSL_FLAG(int, nodes, 4, "cluster: kvstored nodes the tier is spread over.");
ABSL_FLAG(std::string, cluster_capacities, "10,100",
          "cluster: total capacities to replay at, in percent of the trace's distinct blocks "
          "(empty: no replay).");
ABSL_FLAG(bool, cluster_latency, true,
          "cluster: also measure Lookup latency of cached 16-block chains on 1 and 4 nodes, "
          "and Put and Fetch latency with 1 and 2 replicas.");
ABSL_FLAG(bool, cluster_failure, true,
          "cluster: also replay the trace with 1 and 2 replicas, healthy and with one node "
          "killed (-9) halfway, at each of --cluster_failure_capacities.");
ABSL_FLAG(std::string, cluster_failure_capacities, "100,300",
          "cluster: total capacities for the failure replay, in percent of the trace's distinct "
          "blocks: 100 is short of room for two copies; 300 holds two copies of the working "
          "set on the survivors.");
ABSL_FLAG(bool, cluster_placement, true,
          "cluster: also compare per-block with segment placement (runs of 4 and 8 blocks) on "
          "the trace, without daemons: nodes per call, balance, failure cost.");
ABSL_FLAG(bool, cluster_throughput, true,
          "cluster: also measure aggregate Fetch GB/s of 2 MiB blocks with 1, 2 and 4 nodes.");

namespace kvcache {
namespace {

struct NodeFigures {
  uint64_t held_bytes = 0;     // host tier bytes in use at the end
  uint64_t fetched_bytes = 0;  // Fetch bytes it served
};

struct Run {
  ReplayResult replay;
  std::vector<NodeFigures> nodes;
};

// Starts `nodes` daemons with `flags`, adding them to *daemons and *peers.
absl::Status StartNodes(const std::string& kvstored, int nodes,
                        const std::vector<std::string>& flags,
                        std::vector<std::unique_ptr<DaemonProcess>>* daemons,
                        std::vector<std::string>* peers) {
  for (int n = 0; n < nodes; ++n) {
    auto d = DaemonProcess::Start(kvstored, flags);
    if (!d.ok()) return d.status();
    peers->push_back((*d)->address());
    daemons->push_back(std::move(*d));
  }
  return absl::OkStatus();
}

// Starts `nodes` daemons for a trace replay: `blocks_per_node` pages each,
// a page the payload's size rounded up to 4 KiB.
absl::Status StartReplayNodes(const std::string& kvstored, int nodes, uint64_t blocks_per_node,
                              uint64_t payload, std::vector<std::unique_ptr<DaemonProcess>>* daemons,
                              std::vector<std::string>* peers) {
  const uint64_t page = (payload + 4095) / 4096 * 4096;
  return StartNodes(kvstored, nodes,
                    {absl::StrCat("--host_capacity=", (blocks_per_node + 2) * page),
                     absl::StrCat("--page_size=", page), absl::StrCat("--max_block_size=", page),
                     "--local_socket=off"},
                    daemons, peers);
}

// Puts `count` chains of `blocks` blocks of `size` bytes through `cluster`;
// returns their keys.
absl::StatusOr<std::vector<std::vector<BlockKey>>> PutChains(ClusterClient& cluster,
                                                             const KeySchema& schema, size_t count,
                                                             size_t blocks, size_t size) {
  std::vector<std::vector<BlockKey>> chains;
  for (size_t c = 0; c < count; ++c) {
    std::vector<uint32_t> tokens(blocks * schema.tokens_per_block);
    for (size_t t = 0; t < tokens.size(); ++t) tokens[t] = static_cast<uint32_t>(c * 100003 + t);
    absl::StatusOr<std::vector<BlockKey>> keys = ChainKeys(schema, tokens);
    if (!keys.ok()) return keys.status();
    std::vector<PutBlock> put;
    for (const BlockKey& k : *keys) put.push_back({k, std::string(size, static_cast<char>(c))});
    for (v1::PutOutcome o : cluster.Put(schema.NamespaceName(), BlockKey(), put)) {
      if (o != v1::PUT_STORED) return absl::InternalError("cluster put failed");
    }
    chains.push_back(*keys);
  }
  return chains;
}

// Starts `nodes` daemons with `blocks_per_node` pages each, replays the trace
// in order through them, and reads each node's figures.
absl::StatusOr<Run> ReplayOn(const std::string& kvstored, int nodes, uint64_t blocks_per_node,
                             uint64_t payload, const std::vector<TraceRequest>& trace,
                             const std::vector<std::vector<BlockKey>>& keys,
                             const std::string& label) {
  std::vector<std::unique_ptr<DaemonProcess>> daemons;
  std::vector<std::string> peers;
  absl::Status started = StartReplayNodes(kvstored, nodes, blocks_per_node, payload, &daemons,
                                          &peers);
  if (!started.ok()) return started;
  ProgressBar bar(label, trace.size());
  ReplayOptions options;
  if (nodes == 1) {
    options.address = peers[0];
  } else {
    options.peers = peers;
  }
  options.payload_bytes = payload;
  options.workers = 1;
  options.progress = [&bar](size_t done) { bar.Update(done); };
  absl::StatusOr<ReplayResult> replay = ReplayTrace(trace, keys, options);
  if (!replay.ok()) return replay.status();
  Run run;
  run.replay = *replay;
  for (const std::string& peer : peers) {
    auto stub =
        v1::KvCache::NewStub(grpc::CreateChannel(peer, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    v1::StatsResponse stats;
    if (grpc::Status s = stub->Stats(&ctx, {}, &stats); !s.ok()) {
      return absl::UnavailableError(s.error_message());
    }
    run.nodes.push_back({stats.tiers(1).used_bytes(), stats.tiers(1).bytes_out()});
  }
  return run;
}

// Aggregate Fetch throughput through `nodes` daemons: 4 client threads, each
// fetching 8-block chains of 2 MiB blocks from a 64-block working set, for
// `seconds`. Returns GB/s, or an error.
absl::StatusOr<double> FetchThroughput(const std::string& kvstored, int nodes, double seconds) {
  constexpr size_t kBlock = 2 << 20, kChainBlocks = 8, kChains = 8, kThreads = 4;
  std::vector<std::unique_ptr<DaemonProcess>> daemons;
  std::vector<std::string> peers;
  absl::Status started = StartNodes(
      kvstored, nodes, {"--host_capacity=512MiB", "--local_socket=off"}, &daemons, &peers);
  if (!started.ok()) return started;
  ClusterOptions options;
  options.peers = peers;
  options.node.use_local_path = false;  // the daemons' network path, as remote workers use it
  KeySchema schema;
  schema.model_id = "kvbench-cluster";
  std::vector<std::vector<BlockKey>> chains;
  {
    absl::StatusOr<std::unique_ptr<ClusterClient>> cluster = ClusterClient::Create(options);
    if (!cluster.ok()) return cluster.status();
    absl::StatusOr<std::vector<std::vector<BlockKey>>> put =
        PutChains(**cluster, schema, kChains, kChainBlocks, kBlock);
    if (!put.ok()) return put.status();
    chains = std::move(*put);
  }
  std::atomic<uint64_t> bytes{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto cluster = ClusterClient::Create(options);
      if (!cluster.ok()) return;
      std::vector<std::string> bufs(kChainBlocks, std::string(kBlock, '\0'));
      for (size_t i = t; !stop.load(); ++i) {
        const std::vector<BlockKey>& chain = chains[i % kChains];
        std::vector<FetchTarget> targets;
        for (size_t b = 0; b < kChainBlocks; ++b) {
          targets.push_back(
              {chain[b], absl::MakeSpan(reinterpret_cast<uint8_t*>(bufs[b].data()), kBlock)});
        }
        FetchResult got = (*cluster)->Fetch(schema.NamespaceName(), targets);
        bytes += got.blocks * kBlock;
      }
    });
  }
  const absl::Time start = absl::Now();
  absl::SleepFor(absl::Seconds(seconds));
  stop = true;
  for (std::thread& t : threads) t.join();
  return bytes.load() / absl::ToDoubleSeconds(absl::Now() - start) / 1e9;
}

// Lookup latency through `nodes` daemons: `threads` client threads, each
// looking up cached 16-block chains (small blocks: the calls, not the bytes,
// are measured) `calls` times. Returns every call's microseconds.
absl::StatusOr<std::vector<double>> LookupLatency(const std::string& kvstored, int nodes,
                                                  int threads, int calls) {
  constexpr size_t kChainBlocks = 16, kChains = 32;
  std::vector<std::unique_ptr<DaemonProcess>> daemons;
  std::vector<std::string> peers;
  absl::Status started = StartNodes(
      kvstored, nodes,
      {"--host_capacity=64MiB", "--page_size=4KiB", "--local_socket=off", "--prefault=false"},
      &daemons, &peers);
  if (!started.ok()) return started;
  ClusterOptions options;
  options.peers = peers;
  options.node.use_local_path = false;
  absl::StatusOr<std::unique_ptr<ClusterClient>> cluster = ClusterClient::Create(options);
  if (!cluster.ok()) return cluster.status();
  KeySchema schema;
  schema.model_id = "kvbench-cluster-latency";
  absl::StatusOr<std::vector<std::vector<BlockKey>>> put =
      PutChains(**cluster, schema, kChains, kChainBlocks, 1024);
  if (!put.ok()) return put.status();
  const std::vector<std::vector<BlockKey>> chains = std::move(*put);
  std::vector<std::vector<double>> per_thread(threads);
  std::atomic<bool> failed{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < calls + 50; ++i) {  // the first 50 warm up
        const absl::Time start = absl::Now();
        LookupResult r = (*cluster)->Lookup(schema.NamespaceName(), chains[(i + t) % kChains]);
        const double us = absl::ToDoubleMicroseconds(absl::Now() - start);
        if (r.hits != kChainBlocks) failed = true;
        if (i >= 50) per_thread[t].push_back(us);
      }
    });
  }
  for (std::thread& w : workers) w.join();
  if (failed) return absl::InternalError("a lookup missed a cached chain");
  std::vector<double> all;
  for (const auto& v : per_thread) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  return all;
}

// The placement study (tools/trace/placement_study.h) on the trace: per
// block, then segments of 4 and 8 blocks, with 1 and 2 replicas.
void AppendPlacementStudy(const std::vector<std::vector<BlockKey>>& keys, int nodes,
                          std::string* table, std::string* json) {
  absl::StrAppendFormat(
      table,
      "\nPlacement on %d nodes, unbounded capacity (no daemons; every block a hit once "
      "stored):\n| placement | replicas | nodes per lookup | largest node / mean copies | "
      "busiest node's share of hit reads | hits kept with one node down |\n| --- | --- | --- | "
      "--- | --- | --- |\n",
      nodes);
  for (int replicas : {1, 2}) {
    for (int segment : {1, 4, 8}) {
      const PlacementFigures f = StudyPlacement(keys, nodes, segment, replicas);
      absl::StrAppendFormat(table, "| %s | %d | %.2f | %.3fx | %.1f%% (even: %.1f%%) | %.1f%% |\n",
                            segment == 1 ? std::string("per block")
                                         : absl::StrCat("segments of ", segment),
                            replicas, f.nodes_per_request, f.largest_over_mean_copies,
                            100 * f.hottest_read_share, 100.0 / nodes, 100 * f.kept_one_down);
      absl::StrAppendFormat(json,
                            "%s{\"segment_blocks\": %d, \"replicas\": %d, \"nodes_per_lookup\": "
                            "%.3f, \"largest_over_mean_copies\": %.4f, \"hottest_read_share\": "
                            "%.4f, \"kept_one_down\": %.4f}",
                            json->empty() ? "\"placement\": [" : ", ", segment, replicas,
                            f.nodes_per_request, f.largest_over_mean_copies, f.hottest_read_share,
                            f.kept_one_down);
    }
  }
  absl::StrAppend(json, "]");
}

}  // namespace

int RunClusterBench(const std::string& kvstored, bool json) {
  absl::StatusOr<std::vector<TraceRequest>> trace = LoadTrace(absl::GetFlag(FLAGS_trace));
  if (!trace.ok()) {
    std::cerr << "kvbench cluster: " << trace.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<uint64_t> payload = ParseByteSize(absl::GetFlag(FLAGS_payload));
  const int nodes = absl::GetFlag(FLAGS_nodes);
  if (!payload.ok() || *payload == 0 || nodes < 2 || nodes > 64) {
    std::cerr << "kvbench cluster: --payload must be a size > 0 and --nodes in [2, 64]\n";
    return 2;
  }
  std::vector<double> percents;
  for (absl::string_view p : absl::StrSplit(absl::GetFlag(FLAGS_cluster_capacities), ',',
                                            absl::SkipEmpty())) {
    double v = 0;
    if (!absl::SimpleAtod(p, &v) || v <= 0) {
      std::cerr << "kvbench cluster: --cluster_capacities takes percents > 0, e.g. 10,100\n";
      return 2;
    }
    percents.push_back(v);
  }
  absl::StatusOr<std::vector<std::vector<BlockKey>>> keys = TraceKeys(*trace);
  if (!keys.ok()) {
    std::cerr << "kvbench cluster: " << keys.status().message() << "\n";
    return 1;
  }
  const uint64_t distinct = DistinctBlocks(*trace);
  std::string table = percents.empty() ? "" : absl::StrFormat(
      "| capacity | 1 node: hit ratio | %d nodes, %d replicas: hit ratio | largest node / mean "
      "bytes | hottest node's share of fetched bytes | wrong blocks |\n| --- | --- | --- | --- | "
      "--- | --- |\n",
      nodes, ClusterOptions().replicas);
  std::string json_rows;
  for (double pct : percents) {
    const uint64_t total = static_cast<uint64_t>(std::ceil(distinct * pct / 100));
    absl::StatusOr<Run> one = ReplayOn(kvstored, 1, total, *payload, *trace, *keys,
                                       absl::StrFormat("  %g%%, 1 node", pct));
    absl::StatusOr<Run> many =
        ReplayOn(kvstored, nodes, (total + nodes - 1) / nodes, *payload, *trace, *keys,
                 absl::StrFormat("  %g%%, %d nodes", pct, nodes));
    if (!one.ok() || !many.ok()) {
      std::cerr << "kvbench cluster: " << (one.ok() ? many.status() : one.status()) << "\n";
      return 1;
    }
    uint64_t held_total = 0, held_max = 0, fetched_total = 0, fetched_max = 0;
    for (const NodeFigures& f : many->nodes) {
      held_total += f.held_bytes;
      held_max = std::max(held_max, f.held_bytes);
      fetched_total += f.fetched_bytes;
      fetched_max = std::max(fetched_max, f.fetched_bytes);
    }
    const double balance = held_total == 0 ? 0 : held_max / (double(held_total) / nodes);
    const double hottest = fetched_total == 0 ? 0 : double(fetched_max) / fetched_total;
    const uint64_t wrong = one->replay.wrong_blocks + many->replay.wrong_blocks;
    absl::StrAppendFormat(&table, "| %g%% | %.2f%% | %.2f%% | %.3fx | %.1f%% (even: %.1f%%) | %d |\n",
                          pct, 100 * one->replay.hits.ratio(), 100 * many->replay.hits.ratio(),
                          balance, 100 * hottest, 100.0 / nodes, wrong);
    absl::StrAppendFormat(
        &json_rows,
        "%s{\"percent\": %g, \"one_node_hit_ratio\": %.5f, \"cluster_hit_ratio\": %.5f, "
        "\"largest_over_mean_bytes\": %.4f, \"hottest_fetched_share\": %.4f, "
        "\"wrong_blocks\": %d, \"failed_calls\": %d}",
        json_rows.empty() ? "" : ", ", pct, one->replay.hits.ratio(), many->replay.hits.ratio(),
        balance, hottest, wrong, many->replay.failed_calls);
  }
  std::string placement_json;
  if (absl::GetFlag(FLAGS_cluster_placement)) {
    AppendPlacementStudy(*keys, nodes, &table, &placement_json);
  }
  std::string failure_json;
  if (absl::GetFlag(FLAGS_cluster_failure)) {
    for (absl::string_view p : absl::StrSplit(absl::GetFlag(FLAGS_cluster_failure_capacities),
                                              ',', absl::SkipEmpty())) {
      double pct = 0;
      if (!absl::SimpleAtod(p, &pct) || pct <= 0) {
        std::cerr << "kvbench cluster: --cluster_failure_capacities takes percents > 0\n";
        return 2;
      }
      const uint64_t total = static_cast<uint64_t>(std::ceil(distinct * pct / 100));
      absl::Status s = AppendFailureReplay(kvstored, nodes, (total + nodes - 1) / nodes, pct,
                                           *payload, *trace, *keys, &table, &failure_json);
      if (!s.ok()) {
        std::cerr << "kvbench cluster: failure: " << s << "\n";
        return 1;
      }
    }
  }
  std::string latency_json;
  if (absl::GetFlag(FLAGS_cluster_latency)) {
    absl::StrAppend(&table,
                    "\nLookup of a cached 16-block chain (microseconds; 2000 calls per "
                    "thread after 50 to warm up):\n");
    for (int threads : {1, 8}) {
      for (int n : {1, 4}) {
        absl::StatusOr<std::vector<double>> lat = LookupLatency(kvstored, n, threads, 2000);
        if (!lat.ok()) {
          std::cerr << "kvbench cluster: latency: " << lat.status() << "\n";
          return 1;
        }
        const double p50 = (*lat)[lat->size() / 2], p99 = (*lat)[lat->size() * 99 / 100];
        absl::StrAppendFormat(&table,
                              "  %d node(s), %d client thread(s): p50 %.0f us, p99 %.0f us\n", n,
                              threads, p50, p99);
        absl::StrAppendFormat(&latency_json, "%s\"lookup_us_%d_nodes_%d_threads\": [%.1f, %.1f]",
                              latency_json.empty() ? "" : ", ", n, threads, p50, p99);
      }
    }
    std::cerr << "  put and fetch latency, 1 and 2 replicas\n";
    absl::StatusOr<ReplicaLatency> rl = MeasureReplicaLatency(kvstored, nodes, 5);
    if (!rl.ok()) {
      std::cerr << "kvbench cluster: replica latency: " << rl.status() << "\n";
      return 1;
    }
    absl::StrAppendFormat(&table,
                          "\nPut, then Fetch, of a fresh %d-block chain of %s blocks through %d "
                          "nodes (network path; medians of 5 rounds' p50 / p99, microseconds):\n",
                          rl->chain_blocks, FormatBytes(rl->block_bytes), nodes);
    for (int r = 0; r < 2; ++r) {
      absl::StrAppendFormat(&table, "  %d replica(s): put %.0f / %.0f us, fetch %.0f / %.0f us\n",
                            r + 1, rl->put_p50_us[r], rl->put_p99_us[r], rl->fetch_p50_us[r],
                            rl->fetch_p99_us[r]);
      absl::StrAppendFormat(&latency_json,
                            ", \"put_us_%d_replicas\": [%.1f, %.1f], \"fetch_us_%d_replicas\": "
                            "[%.1f, %.1f]",
                            r + 1, rl->put_p50_us[r], rl->put_p99_us[r], r + 1, rl->fetch_p50_us[r],
                            rl->fetch_p99_us[r]);
    }
    absl::StrAppendFormat(&table, "  2 replicas / 1: put %.2fx, fetch %.2fx (p50)\n",
                          rl->put_p50_us[1] / rl->put_p50_us[0],
                          rl->fetch_p50_us[1] / rl->fetch_p50_us[0]);
  }
  std::string throughput_json;
  if (absl::GetFlag(FLAGS_cluster_throughput)) {
    absl::StrAppend(&table, "\nAggregate Fetch, 2 MiB blocks, 8-block chains, 4 client threads "
                            "(median of 3 rounds of 3 s):\n");
    std::vector<double> medians;
    for (int n : {1, 2, 4}) {
      std::vector<double> rounds;
      for (int r = 0; r < 3; ++r) {
        absl::StatusOr<double> g = FetchThroughput(kvstored, n, 3.0);
        if (!g.ok()) {
          std::cerr << "kvbench cluster: throughput: " << g.status() << "\n";
          return 1;
        }
        rounds.push_back(*g);
        std::cerr << absl::StrFormat("  %d node(s), round %d: %.2f GB/s\n", n, r + 1, *g);
      }
      std::sort(rounds.begin(), rounds.end());
      medians.push_back(rounds[1]);
      absl::StrAppendFormat(&table, "  %d node(s): %.2f GB/s (%.2fx one node)\n", n, rounds[1],
                            rounds[1] / medians[0]);
      absl::StrAppendFormat(&throughput_json, "%s\"fetch_gbps_%d_nodes\": %.3f",
                            throughput_json.empty() ? "" : ", ", n, rounds[1]);
    }
  }
  if (json) {
    std::cout << "{\"nodes\": " << nodes << ", \"rows\": [" << json_rows << "]"
              << (placement_json.empty() ? "" : ", ") << placement_json
              << (failure_json.empty() ? "" : ", ") << failure_json
              << (latency_json.empty() ? "" : ", ") << latency_json
              << (throughput_json.empty() ? "" : ", ") << throughput_json << "}\n";
  } else {
    std::cout << table;
  }
  return 0;
}

}  // namespace kvcache
