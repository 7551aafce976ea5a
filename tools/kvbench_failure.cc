#include "tools/kvbench_failure.h"

#include <cstdlib>
#include <iostream>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/byte_size.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "kvcache/v1/kvcache.grpc.pb.h"
#include "tools/daemon_process.h"
#include "tools/etcd_process.h"

namespace kvcache {
namespace {

// The Stats of the node at `address`.
absl::StatusOr<v1::StatsResponse> NodeStats(const std::string& address) {
  auto stub = v1::KvCache::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::StatsResponse stats;
  if (grpc::Status s = stub->Stats(&ctx, {}, &stats); !s.ok()) {
    return absl::UnavailableError(s.error_message());
  }
  return stats;
}

}  // namespace

absl::StatusOr<FailureRun> ReplayThroughAFailure(
    const std::string& kvstored, int nodes, uint64_t blocks_per_node, uint64_t payload,
    const std::vector<TraceRequest>& trace, const std::vector<std::vector<BlockKey>>& keys,
    int replicas, bool kill) {
  absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start();
  if (!etcd.ok()) return etcd.status();
  const uint64_t page = (payload + 4095) / 4096 * 4096;
  std::vector<std::unique_ptr<DaemonProcess>> daemons;
  std::vector<std::string> peers;
  for (int n = 0; n < nodes; ++n) {
    auto d = DaemonProcess::Start(
        kvstored, {absl::StrCat("--host_capacity=", (blocks_per_node + 2) * page),
                   absl::StrCat("--page_size=", page), absl::StrCat("--max_block_size=", page),
                   "--local_socket=off", "--etcd=" + (*etcd)->endpoint(), "--etcd_ttl_s=2",
                   absl::StrCat("--cluster_replicas=", replicas)});
    if (!d.ok()) return d.status();
    peers.push_back((*d)->address());
    daemons.push_back(std::move(*d));
  }
  ReplayOptions options;
  options.etcd = (*etcd)->endpoint();
  options.replicas = replicas;
  options.payload_bytes = payload;
  options.workers = 1;
  // Every node registered, so the first replay places over all of them.
  absl::SleepFor(absl::Seconds(1));
  const size_t cut[] = {0, trace.size() / 2, trace.size() * 3 / 4, trace.size()};
  auto replay_part = [&](int part) {
    const std::vector<TraceRequest> t(trace.begin() + cut[part], trace.begin() + cut[part + 1]);
    const std::vector<std::vector<BlockKey>> k(keys.begin() + cut[part],
                                               keys.begin() + cut[part + 1]);
    return ReplayTrace(t, k, options);
  };
  if (absl::StatusOr<ReplayResult> warm = replay_part(0); !warm.ok()) return warm.status();
  if (kill) daemons[1]->Kill();
  FailureRun run;
  absl::StatusOr<ReplayResult> down = replay_part(1);
  if (!down.ok()) return down.status();
  run.down = *down;
  if (kill && replicas > 1) {
    // Wait (up to 10 minutes) until every survivor finished a repair pass
    // over the member list without the dead node: at least two passes (the
    // first ran at start), none running.
    const absl::Time give_up = absl::Now() + absl::Minutes(10);
    for (bool done = false; !done && absl::Now() < give_up;) {
      absl::SleepFor(absl::Milliseconds(500));
      done = true;
      for (size_t n = 0; n < peers.size(); ++n) {
        if (n == 1) continue;
        absl::StatusOr<v1::StatsResponse> stats = NodeStats(peers[n]);
        if (!stats.ok()) return stats.status();
        int passes = 0;
        const std::string& line = stats->repair();
        const size_t at = line.find("; ");
        if (at != std::string::npos) passes = std::atoi(line.c_str() + at + 2);
        done = done && absl::StartsWith(line, "idle") && passes >= 2;
      }
    }
  }
  absl::StatusOr<ReplayResult> after = replay_part(2);
  if (!after.ok()) return after.status();
  run.after = *after;
  for (size_t n = 0; n < peers.size(); ++n) {
    if (kill && n == 1) continue;
    absl::StatusOr<v1::StatsResponse> stats = NodeStats(peers[n]);
    if (!stats.ok()) return stats.status();
    run.held_bytes += stats->tiers(1).used_bytes();
  }
  return run;
}

absl::Status AppendFailureReplay(const std::string& kvstored, int nodes, uint64_t blocks_per_node,
                                 double percent, uint64_t payload,
                                 const std::vector<TraceRequest>& trace,
                                 const std::vector<std::vector<BlockKey>>& keys,
                                 std::string* table, std::string* json) {
  absl::StrAppendFormat(
      table,
      "\nA node killed with -9 halfway through the trace (%d nodes in etcd, %g%% capacity in "
      "all): the third quarter with it down, the last quarter after the survivors' repair "
      "(replicas 2; none with 1), each against the same quarter of a healthy run:\n"
      "| replicas | 3rd quarter healthy / one down | kept | last quarter healthy / after "
      "repair | kept | requests/s healthy / one down | bytes held (healthy) | wrong blocks "
      "|\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
      nodes, percent);
  std::string rows;
  for (int replicas : {1, 2}) {
    absl::StatusOr<FailureRun> runs[2];
    for (int kill = 0; kill < 2; ++kill) {
      std::cerr << absl::StrFormat("  failure at %g%%: %d replica(s), %s\n", percent, replicas,
                                   kill ? "node 1 killed halfway" : "healthy");
      runs[kill] = ReplayThroughAFailure(kvstored, nodes, blocks_per_node, payload, trace, keys,
                                         replicas, kill == 1);
      if (!runs[kill].ok()) return runs[kill].status();
    }
    const FailureRun& healthy = *runs[0];
    const FailureRun& killed = *runs[1];
    auto kept = [](const ReplayResult& a, const ReplayResult& b) {
      return a.hits.ratio() == 0 ? 0 : b.hits.ratio() / a.hits.ratio();
    };
    const uint64_t wrong = healthy.down.wrong_blocks + healthy.after.wrong_blocks +
                           killed.down.wrong_blocks + killed.after.wrong_blocks;
    absl::StrAppendFormat(
        table,
        "| %d | %.2f%% / %.2f%% | %.1f%% | %.2f%% / %.2f%% | %.1f%% | %.0f / %.0f | %s | %d |\n",
        replicas, 100 * healthy.down.hits.ratio(), 100 * killed.down.hits.ratio(),
        100 * kept(healthy.down, killed.down), 100 * healthy.after.hits.ratio(),
        100 * killed.after.hits.ratio(), 100 * kept(healthy.after, killed.after),
        healthy.down.requests / healthy.down.seconds, killed.down.requests / killed.down.seconds,
        FormatBytes(healthy.held_bytes), wrong);
    absl::StrAppendFormat(&rows,
                          "%s\"replicas_%d\": {\"kept_down\": %.4f, \"kept_after\": %.4f, "
                          "\"held_bytes\": %d, \"wrong_blocks\": %d}",
                          rows.empty() ? "" : ", ", replicas, kept(healthy.down, killed.down),
                          kept(healthy.after, killed.after), healthy.held_bytes, wrong);
  }
  absl::StrAppendFormat(json, "%s\"failure_%g\": {%s}", json->empty() ? "" : ", ", percent, rows);
  return absl::OkStatus();
}

}  // namespace kvcache
