#include "tools/kvbench_failure.h"

#include <cstdlib>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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

}  // namespace kvcache
