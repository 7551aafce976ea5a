#include "kvstore/daemon.h"

#include <unistd.h>

#include <chrono>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/byte_size.h"
#include "common/channel_security.h"
#include "common/log.h"
#include "common/tls_files.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "common/transport_args.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "kvstore/server/metrics_text.h"

namespace kvcache {
namespace {

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

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const DaemonOptions& options) {
  if (options.tls_cert.empty()) return grpc::InsecureServerCredentials();
  // gRPC watches the files itself, so a renewed certificate (or CA) is
  // served from the next handshake on, with no restart and no signal.
  constexpr unsigned kRefreshSeconds = 1;
  auto provider = options.tls_client_ca.empty()
                      ? std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
                            options.tls_key, options.tls_cert, kRefreshSeconds)
                      : std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
                            options.tls_key, options.tls_cert, options.tls_client_ca,
                            kRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  if (!options.tls_client_ca.empty()) {
    tls.watch_root_certs();
    tls.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(tls);
}

std::string RandomId() {
  std::random_device rd;
  return absl::StrFormat("%08x%08x", rd(), rd());
}

}  // namespace

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const DaemonOptions& options) {
  if (!(options.tenant_share > 0 && options.tenant_share <= 1)) {
    return absl::InvalidArgumentError("--tenant_share must be in (0, 1]");
  }
  if (!(options.connection_share > 0 && options.connection_share <= 1) ||
      !(options.stall_timeout > absl::ZeroDuration())) {
    return absl::InvalidArgumentError(
        "--connection_share must be in (0, 1] and --client_stall_timeout_s above 0");
  }
  std::unique_ptr<Daemon> d(new Daemon);
  for (auto start : {&Daemon::StartSecurity, &Daemon::StartStore, &Daemon::StartLocalPath,
                     &Daemon::StartMetrics, &Daemon::StartGrpc, &Daemon::StartDataPort,
                     &Daemon::JoinCluster}) {
    if (absl::Status s = ((*d).*start)(options); !s.ok()) return s;
  }
  return d;
}

absl::Status Daemon::StartSecurity(const DaemonOptions& options) {
  const bool tls = !options.tls_cert.empty() || !options.tls_key.empty();
  if (tls) {
    if (options.tls_cert.empty() || options.tls_key.empty()) {
      return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
    }
    if (absl::Status s = CheckTlsFiles(options.tls_cert, options.tls_key, "--tls_"); !s.ok()) {
      return s;
    }
  }
  if (!options.tls_client_ca.empty()) {
    if (!tls) return absl::InvalidArgumentError("--tls_client_ca needs --tls_cert and --tls_key");
    if (absl::Status s = CheckCaFile(options.tls_client_ca, "--tls_client_ca"); !s.ok()) return s;
  }
  absl::StatusOr<std::unique_ptr<Authenticator>> auth = Authenticator::Create(options.auth);
  if (!auth.ok()) return absl::InvalidArgumentError(auth.status().message());
  auth_ = std::move(*auth);
  tls_cert_ = options.tls_cert;
  tls_key_ = options.tls_key;
  tls_client_ca_ = options.tls_client_ca;
  const bool remote = !IsLoopback(options.listen);
  if (remote && !(tls && auth_->enabled()) && !options.insecure) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing to listen on ", options.listen, " without TLS (--tls_cert, --tls_key) and ",
        "authentication (--token_file): anyone who reaches it could read and evict every ",
        "block. --insecure serves it anyway"));
  }
  security_line_ = absl::StrCat(
      tls ? (options.tls_client_ca.empty() ? "TLS" : "mutual TLS (client certificates)")
          : "plaintext",
      "; ",
      auth_->enabled()
          ? absl::StrCat("tokens (", auth_->identities(), " identities in ",
                         options.auth.token_file, "; SIGHUP re-reads it)")
          : "no authentication (every caller is tenant default, admin)");
  if (!options.store.tenant_quotas.empty()) {
    absl::StrAppend(&security_line_, "; quotas for ", options.store.tenant_quotas.size(),
                    " tenants");
  }
  if (remote && !(tls && auth_->enabled())) {
    absl::StrAppend(&security_line_,
                    "\n             INSECURE (--insecure): reachable beyond this host ",
                    tls ? "with no authentication" : "unencrypted", "; anyone who reaches ",
                    options.listen, " can ", auth_->enabled() ? "read every byte sent" : "read and evict every block");
  }
  return absl::OkStatus();
}

absl::Status Daemon::StartStore(const DaemonOptions& options) {
  const BlockStore::Options& store = options.store;
  if (store.arena.prefault && store.arena.capacity_bytes >= (4ull << 30)) {
    Log(LogLevel::kInfo, absl::StrCat("faulting in ", FormatBytes(store.arena.capacity_bytes),
                                      " of host arena (--noprefault skips this)..."));
  }
  absl::StatusOr<std::unique_ptr<BlockStore>> created = BlockStore::Create(store);
  if (!created.ok()) return absl::UnavailableError(created.status().message());
  store_ = std::move(*created);
  const HostArena& arena = store_->arena();
  host_line_ = absl::StrCat(FormatBytes(arena.capacity_bytes()), " in ",
                            FormatBytes(arena.page_bytes()), " pages",
                            arena.fd() >= 0 ? " (memfd" : " (anonymous", "; ",
                            arena.page_backing(), "; ", arena.gpu_pinning(), ")");
  gpu_line_ = absl::StrCat("off (", store_->gpu_unavailable(), ")");
  if (GpuTier* gpu = store_->gpu(); gpu != nullptr) {
    gpu_line_ = gpu->memory().detail();
  } else if (!store.gpu.has_value()) {
    gpu_line_ = "off (--gpu_capacity=0)";
  }
  nvme_line_ = absl::StrCat("off (", store_->nvme_unavailable(), ")");
  if (NvmeTier* nvme = store_->nvme(); nvme != nullptr) {
    nvme_line_ = absl::StrCat(nvme->Detail(), "; ", nvme->blocks(), " blocks restored in ",
                              absl::StrFormat("%.2f", store_->restore_seconds()), " s");
  } else if (store.nvme.has_value()) {
    Log(LogLevel::kWarning, absl::StrCat("NVMe tier unavailable, serving from DRAM only: ",
                                         store_->nvme_unavailable()));
  }
  // A connection may always stage one block of the largest size.
  const uint64_t arena_bytes = arena.capacity_bytes();
  const uint64_t one_block = std::min(options.limits.max_block_bytes, arena_bytes);
  shares_ = std::make_unique<ConnectionShares>(
      std::max(static_cast<uint64_t>(options.connection_share * arena_bytes), one_block),
      options.tenant_share >= 1
          ? 0
          : std::max(static_cast<uint64_t>(options.tenant_share * arena_bytes), one_block));
  stall_watchdog_ = std::make_unique<StallWatchdog>(options.stall_timeout);
  context_.reset(new ServiceContext{*store_, options.limits, absl::Now(), {}});
  context_->counters.request_metrics = options.request_metrics;
  context_->shares = shares_.get();
  context_->auth = auth_.get();
  context_->stall_watchdog = stall_watchdog_.get();
  if (store_->nvme() != nullptr || store_->gpu() != nullptr) {
    // Fetches that may read NVMe or copy down from the GPU plan off gRPC's threads.
    io_workers_ = std::make_unique<IoWorkers>(options.nvme_queue_depth);
    context_->io_workers = io_workers_.get();
  }
  context_->instance_id = RandomId();
  return absl::OkStatus();
}

absl::Status Daemon::StartLocalPath(const DaemonOptions& options) {
  local_line_ = "off (--local_socket=off)";
  if (options.local_socket == "off") return absl::OkStatus();
  LocalPathServer::Options local;
  local.path = options.local_socket == "auto" ? absl::StrCat("/tmp/kvstored-", getpid(), ".sock")
                                              : options.local_socket;
  local.instance_id = context_->instance_id;
  local.lease_ttl = options.lease_ttl;
  local.stall_timeout = options.stall_timeout;
  local.follow_cpu = options.local_follow_cpu;
  local.staging_bytes = options.local_staging_bytes;
  if (local.staging_bytes < options.limits.max_block_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--local_staging (", FormatBytes(local.staging_bytes), ") must be at least ",
        "--max_block_size (", FormatBytes(options.limits.max_block_bytes),
        "): a same-host put stages a whole block there"));
  }
  if (!ParseIds(options.local_allowed_uids, &local.allowed_uids) ||
      !ParseIds(options.local_allowed_gids, &local.allowed_gids)) {
    return absl::InvalidArgumentError(
        "--local_allowed_uids/gids take comma-separated numbers or self");
  }
  absl::StatusOr<std::unique_ptr<LocalPathServer>> started =
      LocalPathServer::Start(*context_, local);
  if (!started.ok()) {
    return absl::UnavailableError(absl::StrCat("same-host path: ", started.status().message()));
  }
  local_path_ = std::move(*started);
  context_->local_socket = local_path_->path();
  const BlockDirectory* directory = store_->directory();
  local_line_ = absl::StrCat(
      local_path_->path(), " (same-host leases; uids ", options.local_allowed_uids,
      ")\n             direct reads: ",
      directory != nullptr
          ? absl::StrCat("on (block directory, ", FormatBytes(directory->bytes()), ")")
      : options.local_direct_reads
          ? absl::StrCat("off (", store_->directory_unavailable(), ")")
          : std::string("off (--local_direct_reads=false)"),
      "\n             GPU leases: ",
      local_path_->shares_gpu_pool() ? std::string("on (device-to-device from the GPU pool)")
                                     : absl::StrCat("off (", local_path_->gpu_unshared(), ")"));
  return absl::OkStatus();
}

absl::Status Daemon::StartMetrics(const DaemonOptions& options) {
  service_ = std::make_unique<KvCacheService>(*context_);
  const std::string& listen = options.metrics_listen;
  metrics_line_ = "off (--metrics_listen=off)";
  if (listen == "off") return absl::OkStatus();
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics_listen must be host:port or off, not '", listen, "'"));
  }
  MetricsServer::Options metrics;
  metrics.host =
      std::string(absl::StripSuffix(absl::StripPrefix(listen.substr(0, colon), "["), "]"));
  metrics.port = port;
  KvCacheService* service = service_.get();
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start(metrics, [service] {
        v1::StatsResponse stats;
        service->DoStats(stats);
        return RenderMetrics(stats);
      });
  if (!server.ok()) {
    // Only an address the operator gave fails the daemon.
    if (!options.metrics_listen_is_default) {
      return absl::UnavailableError(server.status().message());
    }
    metrics_line_ = absl::StrCat("off (", server.status().message(), ")");
    Log(LogLevel::kWarning, absl::StrCat("no /metrics: ", server.status().message(),
                                         " (--metrics_listen picks another address)"));
    return absl::OkStatus();
  }
  metrics_ = std::move(*server);
  context_->metrics_address = absl::StrCat(listen.substr(0, colon), ":", metrics_->port());
  metrics_line_ = absl::StrCat("http://", context_->metrics_address, "/metrics");
  return absl::OkStatus();
}

absl::Status Daemon::StartGrpc(const DaemonOptions& options) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, ServerCredentials(options), &port_);
  builder.RegisterService(service_.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
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
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen, " (in use, or a bad address?)"));
  }
  bound_ = absl::StrCat(options.listen.substr(0, options.listen.rfind(':')), ":", port_);
  return absl::OkStatus();
}

absl::Status Daemon::StartDataPort(const DaemonOptions& options) {
  data_port_line_ = "off (--data_port=-1)";
  if (options.data_port < 0 || absl::StartsWith(options.listen, "unix:")) return absl::OkStatus();
  const std::string host = options.listen.substr(0, options.listen.rfind(':'));
  DataPortServer::Options data_port;
  data_port.host = std::string(absl::StripSuffix(absl::StripPrefix(host, "["), "]"));
  data_port.port = options.data_port;
  data_port.max_connections = options.data_port_max_connections;
  data_port.stall_timeout = options.stall_timeout;
  if (!options.tls_cert.empty()) {
    absl::StatusOr<std::shared_ptr<TlsContext>> tls =
        TlsContext::ForServer(options.tls_cert, options.tls_key, options.tls_client_ca);
    if (!tls.ok()) return absl::InvalidArgumentError(tls.status().message());
    data_port.tls = *std::move(tls);
  }
  absl::StatusOr<std::unique_ptr<DataPortServer>> started =
      DataPortServer::Start(*context_, data_port);
  if (!started.ok()) return absl::UnavailableError(started.status().message());
  data_port_ = std::move(*started);
  context_->data_port = data_port_->port();
  data_port_line_ = absl::StrCat(host, ":", data_port_->port(), " (bulk Fetch/Put beside gRPC",
                                 data_port.tls != nullptr ? "; TLS 1.3" : "",
                                 auth_->enabled() ? "; tokens" : "", ")");
  return absl::OkStatus();
}

absl::Status Daemon::JoinCluster(const DaemonOptions& options) {
  cluster_line_ = "none (--etcd to join one)";
  if (options.join.etcd.empty()) return absl::OkStatus();
  ClusterJoinOptions join = options.join;
  join.bound = bound_;
  absl::StatusOr<std::unique_ptr<EtcdRegistration>> registered = RegisterInEtcd(join);
  if (!registered.ok()) return absl::InvalidArgumentError(registered.status().message());
  membership_ = std::move(*registered);
  context_->cluster.store(membership_.get(), std::memory_order_release);
  cluster_line_ = absl::StrCat(membership_->key(), " in etcd at ", join.etcd, " (lease ",
                               absl::ToInt64Seconds(join.ttl), " s",
                               membership_->registered() ? ")" : "; not reachable yet, retrying)");
  if (join.replicas <= 1) return absl::OkStatus();
  absl::Status s = StartRepair(*store_, join, &repairer_, &member_watch_);
  if (!s.ok()) return absl::InvalidArgumentError(s.message());
  context_->repairer.store(repairer_.get(), std::memory_order_release);
  absl::StrAppend(&cluster_line_, "; repair to ", join.replicas, " replicas at most ",
                  options.repair_rate_text, "/s");
  return absl::OkStatus();
}

std::string Daemon::Banner() const {
  return absl::StrCat("kvstored ", kVersion, " listening on ", bound_, "\n",
                      "  security:  ", security_line_, "\n",
                      "  host tier: ", host_line_, "\n",
                      "  data port: ", data_port_line_, "\n",
                      "  local:     ", local_line_, "\n",
                      "  GPU tier:  ", gpu_line_, "\n",
                      "  NVMe tier: ", nvme_line_, "\n",
                      "  cluster:   ", cluster_line_, "\n",
                      "  metrics:   ", metrics_line_, "\n",
                      "Try it:  kvctl --server ", bound_, " stats\n");
}

void Daemon::Stop(absl::Duration drain) {
  if (stopped_) return;
  stopped_ = true;
  // Leave the cluster first, so clients stop sending here; the object lives
  // on until the server stops, as Stats reads it.
  if (membership_ != nullptr) membership_->Leave();
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(drain));
    server_->Wait();
  }
  if (data_port_ != nullptr) data_port_->Shutdown();
  if (local_path_ != nullptr) local_path_->Shutdown();
  metrics_.reset();  // its renders read the service and the store
}

absl::Status Daemon::Reload() {
  if (data_port_ != nullptr && !tls_cert_.empty()) {
    absl::StatusOr<std::shared_ptr<TlsContext>> tls =
        TlsContext::ForServer(tls_cert_, tls_key_, tls_client_ca_);
    if (!tls.ok()) return tls.status();
    data_port_->SetTls(*std::move(tls));
  }
  if (auth_ == nullptr || !auth_->enabled()) return absl::OkStatus();
  return auth_->Reload();
}

Daemon::~Daemon() { Stop(absl::ZeroDuration()); }

}  // namespace kvcache
