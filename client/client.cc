#include "client/client.h"

#include <algorithm>
#include <cstring>

#include "client/grpc_transport.h"

namespace kvcache {
namespace {

// Splits targets into up to `parts` contiguous runs of about equal bytes.
std::vector<absl::Span<const FetchTarget>> SplitByBytes(absl::Span<const FetchTarget> targets,
                                                        int parts, uint64_t total) {
  std::vector<absl::Span<const FetchTarget>> out;
  const uint64_t per_part = (total + parts - 1) / parts;
  size_t start = 0;
  uint64_t bytes = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    bytes += targets[i].dest.size();
    if (bytes >= per_part || i + 1 == targets.size()) {
      out.push_back(targets.subspan(start, i + 1 - start));
      start = i + 1;
      bytes = 0;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Create(const ClientOptions& options) {
  if (options.address.empty()) return absl::InvalidArgumentError("client: address is empty");
  if (options.fetch_streams < 1 || options.fetch_streams > 64) {
    return absl::InvalidArgumentError("client: fetch_streams must be in [1, 64]");
  }
  if (options.chunk_bytes < 4096 || options.chunk_bytes > (16u << 20)) {
    return absl::InvalidArgumentError("client: chunk_bytes must be in [4 KiB, 16 MiB]");
  }
  if (options.deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("client: deadline must be positive");
  }
  GrpcTransport::Options grpc;
  grpc.address = options.address;
  grpc.deadline = options.deadline;
  grpc.streams = options.fetch_streams;
  grpc.chunk_bytes = options.chunk_bytes;
  grpc.verify_checksums = options.verify_checksums;
  grpc.security = options.security;
  absl::StatusOr<std::shared_ptr<GrpcTransport>> transport = GrpcTransport::Create(grpc);
  if (!transport.ok()) return transport.status();
  std::shared_ptr<const TlsContext> tls;
  if (options.security.tls()) {
    const ChannelSecurity& s = options.security;
    absl::StatusOr<std::shared_ptr<TlsContext>> made =
        TlsContext::ForClient(s.tls_ca, s.tls_cert, s.tls_key);
    if (!made.ok()) return made.status();
    tls = *std::move(made);
  }
  return std::unique_ptr<Client>(new Client(options, *std::move(transport), std::move(tls)));
}

Client::Client(const ClientOptions& options, std::shared_ptr<GrpcTransport> grpc,
               std::shared_ptr<const TlsContext> tls)
    : options_(options) {
  FastPaths::Options paths;
  paths.tls = std::move(tls);
  paths.tls_server_name = options.security.tls_server_name;
  paths.token = options.security.token;
  paths.act_for_tenant = options.security.act_for_tenant;
  paths.address = options.address;
  paths.timeout = options.deadline;
  paths.use_local_path = options.use_local_path;
  paths.local.direct_reads = options.use_direct_reads;
  paths.local.direct_lookups = options.use_direct_lookups;
  paths.local.verify = options.verify_local_fetches;
  paths.use_data_port = options.use_data_port;
  paths.verify_checksums = options.verify_checksums;
  paths.lookup_spin = options.lookup_spin;
  paths.max_idle_connections = static_cast<size_t>(options.fetch_streams) * 2;
  fast_paths_ = std::make_unique<FastPaths>(paths, std::move(grpc));
  put_thread_ = std::thread([this] { PutLoop(); });
}

Client::~Client() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    put_cv_.SignalAll();
  }
  put_thread_.join();
}

FetchResult Client::Fetch(const std::string& ns, absl::Span<const FetchTarget> targets) {
  fetches_.fetch_add(1, std::memory_order_relaxed);
  FetchResult result;
  uint64_t total = 0;
  for (const FetchTarget& t : targets) {
    if (t.dest.empty()) {
      result.status = absl::InvalidArgumentError("fetch target with an empty buffer");
      fetch_errors_.fetch_add(1, std::memory_order_relaxed);
      metrics_.CountFetchMiss(ClientMiss::kError);
      return result;
    }
    total += t.dest.size();
  }
  if (targets.empty()) return result;
  const int streams = total >= options_.split_fetch_bytes
                          ? static_cast<int>(std::min<size_t>(options_.fetch_streams, targets.size()))
                          : 1;
  std::vector<absl::Span<const FetchTarget>> parts = SplitByBytes(targets, streams, total);
  std::vector<size_t> completed(parts.size(), 0);
  std::vector<std::vector<v1::Tier>> tiers(parts.size());
  std::vector<absl::Status> status(parts.size());
  std::vector<std::thread> helpers;
  for (size_t p = 1; p < parts.size(); ++p) {
    helpers.emplace_back([&, p] {
      status[p] = FetchOneStream(static_cast<int>(p), ns, parts[p], &completed[p], &tiers[p]);
    });
  }
  status[0] = FetchOneStream(0, ns, parts[0], &completed[0], &tiers[0]);
  for (std::thread& t : helpers) t.join();
  // The result is the leading run of targets that all arrived.
  for (size_t p = 0; p < parts.size(); ++p) {
    result.blocks += completed[p];
    result.tiers.insert(result.tiers.end(), tiers[p].begin(), tiers[p].end());
    if (!status[p].ok() && result.status.ok()) result.status = status[p];
    if (completed[p] < parts[p].size()) break;
  }
  if (!result.status.ok()) fetch_errors_.fetch_add(1, std::memory_order_relaxed);
  if (result.blocks < targets.size()) metrics_.CountFetchMiss(MissOf(result.status));
  for (size_t i = 0; i < result.blocks; ++i) {
    fetched_bytes_.fetch_add(targets[i].dest.size(), std::memory_order_relaxed);
  }
  return result;
}

absl::Status Client::FetchOneStream(int stream, const std::string& ns,
                                    absl::Span<const FetchTarget> targets, size_t* completed,
                                    std::vector<v1::Tier>* tiers) {
  const Transport::FetchCall call{ns, options_.chunk_bytes, stream};
  return OverPaths([&](Transport& path) {
    const absl::Span<const FetchTarget> rest = targets.subspan(*completed);
    Transport::FetchProgress progress;
    progress.tiers = tiers;
    const absl::Time start = absl::Now();
    Transport::Outcome outcome = path.Fetch(call, rest, &progress);
    uint64_t bytes = 0;
    for (size_t i = 0; i < progress.completed; ++i) bytes += rest[i].dest.size();
    metrics_.Record(path.path(), ClientOp::kFetch, absl::Now() - start, progress.completed, bytes);
    if (path.path() == ClientPath::kSameHost) {
      local_path_blocks_.fetch_add(progress.completed, std::memory_order_relaxed);
      local_direct_reads_.fetch_add(progress.direct, std::memory_order_relaxed);
    }
    *completed += progress.completed;
    return outcome;
  }).status;
}

ClientCounters Client::counters() const {
  auto load = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  ClientCounters c;
  c.lookups = load(lookups_);
  c.lookup_errors = load(lookup_errors_);
  c.direct_lookups = load(direct_lookups_);
  c.fetches = load(fetches_);
  c.fetch_errors = load(fetch_errors_);
  c.fetched_bytes = load(fetched_bytes_);
  c.data_port_fallbacks = load(data_port_fallbacks_);
  c.local_path_fallbacks = load(local_path_fallbacks_);
  c.local_path_blocks = load(local_path_blocks_);
  c.local_direct_reads = load(local_direct_reads_);
  c.puts_sent = load(puts_sent_);
  c.puts_dropped = load(puts_dropped_);
  c.put_errors = load(put_errors_);
  c.figures = metrics_.Take();
  return c;
}

}  // namespace kvcache
