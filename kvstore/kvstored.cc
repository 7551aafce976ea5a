// kvstored: the kvcache daemon. Serves a host-DRAM (and NVMe) KV-block cache over gRPC.
// Run with --help for every flag.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/byte_size.h"
#include "common/transport_args.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "kvstore/block_store.h"
#include "kvstore/cluster_join.h"
#include "kvstore/data_port_server.h"
#include "kvstore/kvcache_service.h"
#include "kvstore/kvstored_flags.h"
#include "kvstore/local_path_server.h"
#include "kvstore/metrics_server.h"
#include "kvstore/metrics_text.h"
#include "kvstore/protobuf_log_limit.h"

namespace kvcache {
namespace {

bool IsLoopback(const std::string& address) {
  return absl::StartsWith(address, "127.") || absl::StartsWith(address, "localhost:") ||
         absl::StartsWith(address, "[::1]:") || absl::StartsWith(address, "unix:");
}

// Parses "1000,1001" (and "self" for our own uid) into ids.
template <typename Id>
bool ParseIds(const std::string& text, std::vector<Id>* out) {
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    uint32_t id;
    if (part == "self") {
      out->push_back(static_cast<Id>(getuid()));
    } else if (absl::SimpleAtoi(part, &id)) {
      out->push_back(static_cast<Id>(id));
    } else {
      return false;
    }
  }
  return true;
}

std::string RandomId() {
  std::random_device rd;
  return absl::StrFormat("%08x%08x", rd(), rd());
}

// How this daemon joins a cluster, from the flags (kvstore/cluster_join.h).
ClusterJoinOptions JoinOptions(const std::string& bound) {
  ClusterJoinOptions join;
  join.etcd = absl::GetFlag(FLAGS_etcd);
  join.prefix = absl::GetFlag(FLAGS_etcd_prefix);
  join.advertise = absl::GetFlag(FLAGS_advertise);
  join.bound = bound;
  join.ttl = absl::Seconds(absl::GetFlag(FLAGS_etcd_ttl_s));
  join.replicas = absl::GetFlag(FLAGS_cluster_replicas);
  join.repair_bytes_per_second = SizeFlag(FLAGS_repair_rate, "repair_rate");
  return join;
}

// Starts /metrics as --metrics_listen says, rendering `service`'s Stats;
// null when off. Sets *address to host:port ("" when off) and *line to
// what the banner says. Fails the daemon only for an address the operator
// gave.
absl::StatusOr<std::unique_ptr<MetricsServer>> StartMetrics(KvCacheService& service,
                                                            std::string* address,
                                                            std::string* line) {
  const std::string listen = absl::GetFlag(FLAGS_metrics_listen);
  *line = "off (--metrics_listen=off)";
  if (listen == "off") return nullptr;
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics_listen must be host:port or off, not '", listen, "'"));
  }
  MetricsServer::Options options;
  options.host = std::string(absl::StripSuffix(absl::StripPrefix(listen.substr(0, colon), "["), "]"));
  options.port = port;
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start(options, [&service] {
        v1::StatsResponse stats;
        service.DoStats(stats);
        return RenderMetrics(stats);
      });
  if (!server.ok()) {
    if (listen != kDefaultMetricsListen) return server.status();  // the operator's own address
    *line = absl::StrCat("off (", server.status().message(), ")");
    std::cerr << "kvstored: no /metrics: " << server.status().message()
              << " (--metrics_listen picks another address)\n";
    return nullptr;
  }
  *address = absl::StrCat(listen.substr(0, colon), ":", (*server)->port());
  *line = absl::StrCat("http://", *address, "/metrics");
  return server;
}

int Run() {
  const std::string listen = absl::GetFlag(FLAGS_listen);
  if (!IsLoopback(listen) && !absl::GetFlag(FLAGS_allow_remote)) {
    std::cerr << "kvstored: refusing to listen on " << listen
              << " without --allow_remote (no TLS or authentication yet)\n";
    return 2;
  }
  absl::StatusOr<BlockStore::Options> parsed = StoreOptionsFromFlags();
  if (!parsed.ok()) {
    std::cerr << "kvstored: " << parsed.status().message() << "\n";
    return 2;
  }
  const BlockStore::Options& store_options = *parsed;
  if (store_options.arena.prefault && store_options.arena.capacity_bytes >= (4ull << 30)) {
    std::cout << "kvstored: faulting in " << FormatBytes(store_options.arena.capacity_bytes)
              << " of host arena (--noprefault skips this)..." << std::endl;
  }
  absl::StatusOr<std::unique_ptr<BlockStore>> store = BlockStore::Create(store_options);
  if (!store.ok()) {
    std::cerr << "kvstored: " << store.status().message() << "\n";
    return 1;
  }
  std::string gpu_line = absl::StrCat("off (", (*store)->gpu_unavailable(), ")");
  if (GpuTier* gpu = (*store)->gpu(); gpu != nullptr) {
    gpu_line = gpu->memory().detail();
  } else if (!store_options.gpu.has_value()) {
    gpu_line = "off (--gpu_capacity=0)";
  }
  std::string nvme_line = absl::StrCat("off (", (*store)->nvme_unavailable(), ")");
  if (NvmeTier* nvme = (*store)->nvme(); nvme != nullptr) {
    nvme_line = absl::StrCat(nvme->Detail(), "; ", nvme->blocks(), " blocks restored in ",
                             absl::StrFormat("%.2f", (*store)->restore_seconds()), " s");
  } else if (store_options.nvme.has_value()) {
    std::cerr << "kvstored: NVMe tier unavailable, serving from DRAM only: "
              << (*store)->nvme_unavailable() << "\n";
  }
  ServiceLimits limits;
  limits.max_block_bytes = SizeFlag(FLAGS_max_block_size, "max_block_size");
  limits.max_chunk_bytes = static_cast<uint32_t>(SizeFlag(FLAGS_max_chunk_size, "max_chunk_size"));
  limits.max_keys_per_request = absl::GetFlag(FLAGS_max_keys_per_request);
  const uint64_t max_message = SizeFlag(FLAGS_max_message_size, "max_message_size");

  const double share = absl::GetFlag(FLAGS_connection_share);
  const double stall_s = absl::GetFlag(FLAGS_client_stall_timeout_s);
  if (!(share > 0 && share <= 1) || !(stall_s > 0)) {
    std::cerr << "kvstored: --connection_share must be in (0, 1] and --client_stall_timeout_s "
                 "above 0\n";
    return 1;
  }
  const absl::Duration stall_timeout = absl::Seconds(stall_s);
  // Declared before the service and server, so they outlive every call.
  std::unique_ptr<IoWorkers> io_workers;
  // A connection may always stage one block of the largest size.
  const uint64_t arena_bytes = (*store)->arena().capacity_bytes();
  ConnectionShares shares(std::max(static_cast<uint64_t>(share * arena_bytes),
                                   std::min(limits.max_block_bytes, arena_bytes)));
  StallWatchdog stall_watchdog(stall_timeout);
  ServiceContext context{**store, limits, absl::Now(), {}};
  context.counters.request_metrics = absl::GetFlag(FLAGS_request_metrics);
  context.shares = &shares;
  context.stall_watchdog = &stall_watchdog;
  if ((*store)->nvme() != nullptr || (*store)->gpu() != nullptr) {
    // Fetches that may read NVMe or copy down from the GPU plan off gRPC's threads.
    io_workers = std::make_unique<IoWorkers>(absl::GetFlag(FLAGS_nvme_queue_depth));
    context.io_workers = io_workers.get();
  }
  context.instance_id = RandomId();
  std::unique_ptr<LocalPathServer> local_path;
  std::string local_line = "off (--local_socket=off)";
  if (const std::string flag = absl::GetFlag(FLAGS_local_socket); flag != "off") {
    LocalPathServer::Options options;
    options.path = flag == "auto" ? absl::StrCat("/tmp/kvstored-", getpid(), ".sock") : flag;
    options.instance_id = context.instance_id;
    options.lease_ttl = absl::Seconds(absl::GetFlag(FLAGS_lease_ttl_s));
    options.stall_timeout = stall_timeout;
    options.staging_bytes = SizeFlag(FLAGS_local_staging, "local_staging");
    if (options.staging_bytes < limits.max_block_bytes) {
      std::cerr << "kvstored: --local_staging (" << FormatBytes(options.staging_bytes)
                << ") must be at least --max_block_size (" << FormatBytes(limits.max_block_bytes)
                << "): a same-host put stages a whole block there\n";
      return 2;
    }
    if (!ParseIds(absl::GetFlag(FLAGS_local_allowed_uids), &options.allowed_uids) ||
        !ParseIds(absl::GetFlag(FLAGS_local_allowed_gids), &options.allowed_gids)) {
      std::cerr << "kvstored: --local_allowed_uids/gids take comma-separated numbers or self\n";
      return 2;
    }
    absl::StatusOr<std::unique_ptr<LocalPathServer>> started = LocalPathServer::Start(context, options);
    if (!started.ok()) {
      std::cerr << "kvstored: same-host path: " << started.status().message() << "\n";
      return 1;
    }
    local_path = std::move(*started);
    context.local_socket = local_path->path();
    const BlockDirectory* directory = (*store)->directory();
    local_line = absl::StrCat(
        local_path->path(), " (same-host leases; uids ", absl::GetFlag(FLAGS_local_allowed_uids),
        ")\n             direct reads: ",
        directory != nullptr
            ? absl::StrCat("on (block directory, ", FormatBytes(directory->bytes()), ")")
        : absl::GetFlag(FLAGS_local_direct_reads)
            ? absl::StrCat("off (", (*store)->directory_unavailable(), ")")
            : std::string("off (--local_direct_reads=false)"),
        "\n             GPU leases: ",
        local_path->shares_gpu_pool() ? std::string("on (device-to-device from the GPU pool)")
                                      : absl::StrCat("off (", local_path->gpu_unshared(), ")"));
  }
  KvCacheService service(context);
  std::string metrics_line;
  absl::StatusOr<std::unique_ptr<MetricsServer>> metrics =
      StartMetrics(service, &context.metrics_address, &metrics_line);
  if (!metrics.ok()) {
    std::cerr << "kvstored: " << metrics.status().message() << "\n";
    return 1;
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_message));
  builder.SetMaxSendMessageSize(static_cast<int>(max_message));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             absl::GetFlag(FLAGS_max_concurrent_streams));
  // gRPC binds with SO_REUSEPORT by default, so a second daemon started on
  // a port in use would silently take half its connections. Refuse instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // A connection with no call open for 5 minutes is closed, as on the data
  // port: idle clients do not hold a connection (and its buffers) forever.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 5 * 60 * 1000);
  for (const auto& [name, value] : BulkTransferChannelArgs()) {
    builder.AddChannelArgument(name, value);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "kvstored: cannot listen on " << listen << " (in use, or a bad address?)\n";
    return 1;
  }
  const std::string host = listen.substr(0, listen.rfind(':'));
  const std::string bound = absl::StrCat(host, ":", port);
  std::unique_ptr<DataPortServer> data_port;
  std::string data_port_line = "off (--data_port=-1)";
  if (absl::GetFlag(FLAGS_data_port) >= 0 && !absl::StartsWith(listen, "unix:")) {
    DataPortServer::Options options;
    options.host = std::string(absl::StripSuffix(absl::StripPrefix(host, "["), "]"));
    options.port = absl::GetFlag(FLAGS_data_port);
    options.max_connections = absl::GetFlag(FLAGS_data_port_max_connections);
    options.stall_timeout = stall_timeout;
    absl::StatusOr<std::unique_ptr<DataPortServer>> started = DataPortServer::Start(context, options);
    if (!started.ok()) {
      std::cerr << "kvstored: " << started.status().message() << "\n";
      return 1;
    }
    data_port = std::move(*started);
    context.data_port = data_port->port();
    data_port_line = absl::StrCat(host, ":", data_port->port(), " (bulk Fetch/Put beside gRPC)");
  }
  std::unique_ptr<EtcdRegistration> membership;
  std::string cluster_line = "none (--etcd to join one)";
  if (const std::string etcd = absl::GetFlag(FLAGS_etcd); !etcd.empty()) {
    absl::StatusOr<std::unique_ptr<EtcdRegistration>> r = RegisterInEtcd(JoinOptions(bound));
    if (!r.ok()) {
      std::cerr << "kvstored: " << r.status().message() << "\n";
      return 2;
    }
    membership = std::move(*r);
    context.cluster.store(membership.get(), std::memory_order_release);
    cluster_line = absl::StrCat(membership->key(), " in etcd at ", etcd, " (lease ",
                                absl::GetFlag(FLAGS_etcd_ttl_s), " s",
                                membership->registered() ? ")" : "; not reachable yet, retrying)");
  }
  // Declared after the store and before the watch that feeds it, so the
  // watch stops first and the store outlives both.
  std::unique_ptr<ReplicaRepairer> repairer;
  std::unique_ptr<EtcdMembers> member_watch;
  if (membership != nullptr && absl::GetFlag(FLAGS_cluster_replicas) > 1) {
    absl::Status s = StartRepair(**store, JoinOptions(bound), &repairer, &member_watch);
    if (!s.ok()) {
      std::cerr << "kvstored: " << s.message() << "\n";
      return 2;
    }
    context.repairer.store(repairer.get(), std::memory_order_release);
    absl::StrAppend(&cluster_line, "; repair to ", absl::GetFlag(FLAGS_cluster_replicas),
                    " replicas at most ", absl::GetFlag(FLAGS_repair_rate), "/s");
  }
  if (const std::string path = absl::GetFlag(FLAGS_port_file); !path.empty()) {
    std::ofstream(path) << port << "\n";
  }
  std::cout << "kvstored " << kVersion << " listening on " << bound << "\n"
            << "  host tier: " << FormatBytes((*store)->arena().capacity_bytes()) << " in "
            << FormatBytes((*store)->arena().page_bytes()) << " pages"
            << ((*store)->arena().fd() >= 0 ? " (memfd" : " (anonymous") << "; "
            << (*store)->arena().page_backing() << "; " << (*store)->arena().gpu_pinning() << ")\n"
            << "  data port: " << data_port_line << "\n"
            << "  local:     " << local_line << "\n"
            << "  GPU tier:  " << gpu_line << "\n"
            << "  NVMe tier: " << nvme_line << "\n"
            << "  cluster:   " << cluster_line << "\n"
            << "  metrics:   " << metrics_line << "\n"
            << "Try it:  kvctl --server " << bound << " stats\n"
            << "Stop with Ctrl-C (SIGINT) or SIGTERM.\n"
            << std::flush;

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  int sig = 0;
  sigwait(&signals, &sig);
  std::cout << "kvstored: " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", draining for up to "
            << absl::GetFlag(FLAGS_drain_timeout_s) << "s" << std::endl;
  // Leave the cluster first, so clients stop sending here; the object lives
  // on until the server stops, as Stats reads it.
  if (membership != nullptr) membership->Leave();
  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::seconds(absl::GetFlag(FLAGS_drain_timeout_s)));
  server->Wait();
  if (data_port != nullptr) data_port->Shutdown();
  if (local_path != nullptr) local_path->Shutdown();
  metrics->reset();  // its renders read the service and the store
  std::cout << "kvstored: stopped" << std::endl;
  return 0;
}

}  // namespace
}  // namespace kvcache

int main(int argc, char** argv) {
  // Block the stop signals before gRPC starts threads, so only sigwait sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // A file size limit (RLIMIT_FSIZE) on the NVMe file is an I/O error that
  // disables the tier, not a reason to die.
  signal(SIGXFSZ, SIG_IGN);
  // Requests allocate and free buffers of tens of KiB to a few MiB (a
  // 1,024-key lookup's keys and answer, a gRPC put's message). glibc gives
  // the freed top of a heap back to the kernel past 128 KiB by default, so
  // every such request faulted in fresh zeroed pages (5% of the daemon's
  // time in a lookup benchmark); keep up to 64 MiB of it instead.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 8 << 20);

  absl::SetProgramUsageMessage(
      "kvstored: the kvcache daemon. Caches KV blocks of LLM prompts in host DRAM (and on NVMe\n"
      "with --nvme_dir) and serves them over gRPC (service kvcache.v1.KvCache, with health "
      "checking and reflection).\n\n"
      "  kvstored                                  # 1 GiB host tier on 127.0.0.1:50051\n"
      "  kvstored --host_capacity=16GiB --listen=127.0.0.1:7070\n"
      "  kvstored --nvme_dir=/var/lib/kvstored --nvme_capacity=500GiB   # with an NVMe tier\n\n"
      "Sizes take units: 4096, 256KiB, 64MiB, 16GiB (KiB=1024, KB=1000).");
  absl::ParseCommandLine(argc, argv);
  // Any client can make protobuf log (a string that is not UTF-8): at most
  // one such line per 10 s.
  kvcache::LimitProtobufLogging(absl::Seconds(10));
  return kvcache::Run();
}
