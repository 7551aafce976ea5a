#include "tools/kvbench_cluster.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <numeric>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/byte_size.h"
#include "grpcpp/grpcpp.h"
#include "kvcache/v1/kvcache.grpc.pb.h"
#include "tools/daemon_process.h"
#include "tools/progress_bar.h"
#include "tools/trace/trace_replay.h"

ABSL_DECLARE_FLAG(std::string, trace);
ABSL_DECLARE_FLAG(std::string, payload);
ABSL_FLAG(int, nodes, 4, "cluster: kvstored nodes the tier is spread over.");
ABSL_FLAG(std::string, cluster_capacities, "10,100",
          "cluster: total capacities to replay at, in percent of the trace's distinct blocks.");

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

// Starts `nodes` daemons with `blocks_per_node` pages each, replays the trace
// in order through them, and reads each node's figures.
absl::StatusOr<Run> ReplayOn(const std::string& kvstored, int nodes, uint64_t blocks_per_node,
                             uint64_t payload, const std::vector<TraceRequest>& trace,
                             const std::vector<std::vector<BlockKey>>& keys,
                             const std::string& label) {
  const uint64_t page = (payload + 4095) / 4096 * 4096;
  std::vector<std::unique_ptr<DaemonProcess>> daemons;
  std::vector<std::string> peers;
  for (int n = 0; n < nodes; ++n) {
    auto d = DaemonProcess::Start(
        kvstored, {absl::StrCat("--host_capacity=", (blocks_per_node + 2) * page),
                   absl::StrCat("--page_size=", page), absl::StrCat("--max_block_size=", page),
                   "--local_socket=off"});
    if (!d.ok()) return d.status();
    peers.push_back((*d)->address());
    daemons.push_back(std::move(*d));
  }
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
  for (absl::string_view p : absl::StrSplit(absl::GetFlag(FLAGS_cluster_capacities), ',')) {
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
  std::string table = absl::StrFormat(
      "| capacity | 1 node: hit ratio | %d nodes: hit ratio | largest node / mean bytes | "
      "hottest node's share of fetched bytes | wrong blocks |\n| --- | --- | --- | --- | --- | "
      "--- |\n",
      nodes);
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
  if (json) {
    std::cout << "{\"nodes\": " << nodes << ", \"rows\": [" << json_rows << "]}\n";
  } else {
    std::cout << table;
  }
  return 0;
}

}  // namespace kvcache
