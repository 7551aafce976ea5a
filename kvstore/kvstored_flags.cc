#include "kvstore/kvstored_flags.h"

#include <cstdlib>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/byte_size.h"
#include "common/channel_security.h"
#include "kvstore/store/tenant_quota.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "Address to serve gRPC on, host:port. Port 0 picks a free port (see --port_file).");
ABSL_FLAG(std::string, metrics_listen, kvcache::kDefaultMetricsListen,
          "Where to serve Prometheus metrics (GET /metrics), host:port with an IP literal; port 0 "
          "picks a free one (Stats and `kvctl stats` say which); \"off\" serves none. If the "
          "default port is taken the daemon says so and runs without metrics.");
ABSL_FLAG(bool, insecure, false,
          "Serve a non-loopback --listen without TLS and authentication. Anyone who can reach "
          "the port can then read (and without --token_file evict) every block.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain for gRPC over TLS (with --tls_key). Re-read within a second "
          "when the file changes.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificates: every client must present a certificate one of them signed "
          "(mutual TLS). Its common name maps to a tenant with a cn: line in --token_file.");
ABSL_FLAG(std::string, token_file, "",
          "Turns authentication on. One identity per line: '<sha256 hex of a token> <tenant> "
          "<role>' or 'cn:<client certificate CN> <tenant> <role>'; roles read, write, admin; "
          "`printf %s TOKEN | sha256sum` hashes a token. Clients send 'authorization: Bearer "
          "TOKEN'. SIGHUP re-reads it (revoked tokens stop at once).");
ABSL_FLAG(std::string, etcd_tls_ca, "",
          "PEM CA of etcd's certificate: talk to etcd (--etcd) over TLS.");
ABSL_FLAG(std::string, etcd_tls_cert, "",
          "PEM client certificate for etcd (etcd --client-cert-auth), with --etcd_tls_key.");
ABSL_FLAG(std::string, etcd_tls_key, "", "PEM private key of --etcd_tls_cert.");
ABSL_FLAG(std::string, etcd_user, "",
          "The etcd user to log in as, for an etcd with its authentication on (etcdctl auth "
          "enable); its role needs read and write on --etcd_prefix. With --etcd_password_file.");
ABSL_FLAG(std::string, etcd_password_file, "",
          "File whose first line is --etcd_user's password (a file, not a flag: a command line "
          "is visible to every user of the host).");
ABSL_FLAG(std::string, peer_tls_ca, "",
          "PEM CA of the other daemons' certificates: replica repair reaches its peers over "
          "TLS, presenting --tls_cert/--tls_key if they ask for one.");
ABSL_FLAG(std::string, peer_token_file, "",
          "File whose first line is the token replica repair sends its peers. Their "
          "--token_file must give it the admin role: repair copies every tenant's blocks, "
          "each acting in that block's tenant.");
ABSL_FLAG(double, tenant_share, 1.0,
          "Fraction of the host arena all of one tenant's connections together may hold staged "
          "or pinned at once (each connection is bounded by --connection_share too); 1: no "
          "bound beyond the arena. Keeps one tenant's in-flight puts and fetches from taking "
          "the room every other tenant needs.");
ABSL_FLAG(std::string, tenant_quotas, "",
          "Most bytes each named tenant's blocks may hold, all tiers together ('tenant:size') "
          "or in one tier ('tenant:host:size', 'tenant:nvme:size', 'tenant:gpu:size'), "
          "comma-separated: team-a:8GiB,team-a:host:2GiB,team-b:nvme:100GiB. A tenant at a "
          "bound makes room from its own coldest blocks (at its host bound, host copies with "
          "an NVMe copy move off the host first); nobody's pressure takes a tier's copies of "
          "a tenant within its bound there. Tenants not named have neither limit nor "
          "protection.");
ABSL_FLAG(std::string, local_tenants, "",
          "With --token_file: same-host peers' identities, 'uid:tenant:role,...' (\"self\": "
          "the daemon's uid). Unlisted peers are refused. A listed worker's requests are scoped "
          "to its tenant, but it maps the whole arena and can read any tenant's bytes there.");
ABSL_FLAG(int, data_port, 0,
          "TCP port of the bulk data port beside gRPC (raw Fetch and Put bytes; clients find "
          "it via Hello and fall back to gRPC without it). 0 picks a free port, -1 turns it off. It "
          "binds to the --listen host.");
ABSL_FLAG(int, data_port_max_connections, 64,
          "Most open data-port connections; more are closed at once (those clients use gRPC).");
ABSL_FLAG(std::string, local_socket, "auto",
          "Unix-domain socket of the same-host path, where trusted local workers map the host "
          "arena and fetch and put by lease at memory speed. \"auto\": /tmp/kvstored-<pid>.sock "
          "(clients learn it from Hello); a path; or \"off\".");
ABSL_FLAG(std::string, local_allowed_uids, "self",
          "Comma-separated uids allowed on the local socket (\"self\": the daemon's own uid). "
          "Whoever maps the arena can read every cached block of every tenant.");
ABSL_FLAG(std::string, local_allowed_gids, "", "Comma-separated gids allowed on the local socket.");
ABSL_FLAG(bool, local_direct_reads, true,
          "List host-resident blocks in a read-only directory shared with same-host workers, "
          "who then copy them from the arena with no request at all (they report the reads "
          "afterwards, for LRU order and Stats). Off: every same-host fetch takes a lease, one "
          "round trip.");
ABSL_FLAG(bool, local_follow_cpu, true,
          "Serve each same-host request on the CPU its client waits on (the request says which), "
          "so neither end wakes on an idle CPU and a put's bytes are read "
          "from the cache that holds them: 1.25-1.3x the speed of 2 MiB puts and lease fetches "
          "on a 2-vCPU VM. Off: the scheduler places both.");
ABSL_FLAG(int, lease_ttl_s, 30,
          "Seconds a same-host lease (of host arena pages, or of GPU pool pages a worker copies "
          "device to device) may be held before the daemon takes its pages back.");
ABSL_FLAG(std::string, local_staging, "128MiB",
          "Writable staging memfd each same-host connection writes its puts into (the arena "
          "itself is read-only to clients). At least --max_block_size; memory is taken only for "
          "the pages its concurrent puts touch.");
ABSL_FLAG(std::string, host_capacity, "1GiB",
          "Size of the host-DRAM arena, mapped once at start (e.g. 512MiB, 64GiB).");
ABSL_FLAG(std::string, page_size, "256KiB",
          "Arena page size, a power of two in [4KiB, 64MiB]. A block uses whole pages.");
ABSL_FLAG(std::string, max_block_size, "64MiB", "Largest block a Put may store.");
ABSL_FLAG(std::string, max_chunk_size, "4MiB", "Largest payload per Fetch reply message.");
ABSL_FLAG(std::string, max_message_size, "16MiB",
          "Largest gRPC message accepted; bigger ones fail with RESOURCE_EXHAUSTED.");
ABSL_FLAG(std::string, nvme_dir, "",
          "Directory of the NVMe tier: its RocksDB index and (unless --nvme_device) its data "
          "file. Empty: no NVMe tier. Restarting on the same directory finds its blocks again.");
ABSL_FLAG(std::string, nvme_device, "",
          "A raw block device to hold the NVMe tier's data instead of <nvme_dir>/blocks.data.");
ABSL_FLAG(std::string, nvme_capacity, "16GiB",
          "Size of the NVMe tier's data file (preallocated) or of the device part it uses.");
ABSL_FLAG(std::string, nvme_engine, "auto",
          "NVMe I/O engine: auto (io_uring, else a pread/pwrite thread pool), io_uring, threads.");
ABSL_FLAG(int, nvme_queue_depth, 8, "NVMe ops in flight per batch.");
ABSL_FLAG(std::string, nvme_write_budget, "0",
          "Most bytes per second the NVMe tier writes (e.g. 200MiB), to spare the drive; 0: no "
          "limit.");
ABSL_FLAG(int, nvme_admit_min_hits, 0,
          "Write to NVMe only blocks read at least this many times; 0: every spilled block.");
ABSL_FLAG(double, spill_high, 0.90,
          "Host arena fill (fraction) past which cold blocks are spilled to NVMe.");
ABSL_FLAG(double, spill_low, 0.80, "Host arena fill (fraction) spilling brings it down to.");
ABSL_FLAG(int, nvme_retry_s, 1,
          "After an NVMe I/O error (a full disk included), seconds between retries.");
ABSL_FLAG(bool, prefault, true,
          "Fault the whole host arena in at start (takes about 0.2s per GiB) so puts never "
          "wait for the kernel to allocate pages. --noprefault starts faster but puts run slower.");
ABSL_FLAG(bool, pin_host_arena, true,
          "Where a GPU is usable, pin the host arena for GPU DMA once at start "
          "(cudaHostRegister), so copies between it and GPU memory are asynchronous and run at "
          "the bus's speed. Without a GPU this does nothing and the banner says why.");
ABSL_FLAG(std::string, gpu_capacity, "2GiB",
          "GPU tier: device memory taken once at start (one allocation) for the top tier of the "
          "cache. Puts land there while it has room; the coldest blocks are copied down to the "
          "host arena past 90% full. 0: no GPU tier. Without a usable GPU the daemon runs "
          "without it and the banner and Stats say why.");
ABSL_FLAG(int, gpu_index, 0, "CUDA device index of the GPU tier.");
ABSL_FLAG(std::string, gpu_page_size, "2MiB",
          "GPU tier page size, a power of two in [64KiB, 64MiB]. A block uses whole pages.");
ABSL_FLAG(int, gpu_promote_after_hits, 2,
          "A block held only on the host is copied up to the GPU tier once it has been read "
          "this many times.");
ABSL_FLAG(bool, gpu_in_host_memory, false,
          "Testing only: back the GPU tier with host memory, so its movement between tiers can "
          "be exercised on a machine without a GPU. Gives no speed.");
ABSL_FLAG(int, max_concurrent_streams, 256, "HTTP/2 concurrent streams per connection.");
ABSL_FLAG(int, max_keys_per_request, 65536, "Most keys one Lookup may carry.");
ABSL_FLAG(double, client_stall_timeout_s, 10,
          "A put that sends nothing for this long in the middle of a block, or a fetch whose "
          "reader takes nothing for this long, is cut off and its staging and pins freed (gRPC, "
          "data port and same-host path alike). Between requests the idle timeouts apply.");
ABSL_FLAG(double, connection_share, 0.25,
          "Most of the host arena one client connection may hold at once, staged by its "
          "unfinished puts and pinned by its unfinished fetches and leases (a fraction in "
          "(0, 1]); never less than one block of --max_block_size.");
ABSL_FLAG(int, index_shards, 16, "Lock shards of the block index (1 to 64).");
ABSL_FLAG(bool, request_metrics, true,
          "Time every request into the latency histograms and name the reason of every miss. "
          "Off only to measure what that costs (kvbench metrics); /metrics then shows no "
          "latencies or misses by reason.");
ABSL_FLAG(int, drop_record_entries, 65536,
          "Recent evictions and drops remembered with their reason, for the misses-by-reason "
          "figures and `kvctl why` (about 100 bytes each; the oldest is forgotten first; 0: "
          "none, so every miss reads never_stored).");
ABSL_FLAG(int, drain_timeout_s, 10,
          "On SIGTERM/SIGINT, seconds to let in-flight calls finish before cancelling them.");
ABSL_FLAG(std::string, etcd, "",
          "etcd endpoints (host:port, or IPv4 a.b.c.d:port,...) to register this node in as a "
          "cluster member; ClusterClient and kvctl --etcd find it there. Off when empty.");
ABSL_FLAG(std::string, etcd_prefix, "/kvcache/nodes/",
          "etcd key prefix of the cluster's members (one cluster per prefix).");
ABSL_FLAG(std::string, advertise, "",
          "The address clients should dial, registered in etcd. Default: the bound --listen "
          "address (required when listening on 0.0.0.0 or [::]).");
ABSL_FLAG(int, cluster_replicas, 2,
          "Copies of each block the cluster keeps (as its clients' ClusterOptions::replicas). "
          "With --etcd, after a member joins or leaves this node copies the blocks it holds to "
          "the nodes that should now hold them too; 1 turns that off.");
ABSL_FLAG(std::string, repair_rate, "64MiB", "Most bytes per second that copying sends.");
ABSL_FLAG(int, etcd_ttl_s, 5,
          "Lease of the etcd registration, in seconds (at least 2): a node killed without a "
          "clean stop leaves the member list within this time.");
ABSL_FLAG(std::string, port_file, "",
          "If set, write the bound port to this file once serving (for scripts and tests).");

namespace kvcache {

uint64_t SizeFlag(const absl::Flag<std::string>& flag, const char* name) {
  absl::StatusOr<uint64_t> v = ParseByteSize(absl::GetFlag(flag));
  if (!v.ok()) {
    std::cerr << "kvstored: --" << name << ": " << v.status().message() << "\n";
    std::exit(2);
  }
  return *v;
}

absl::StatusOr<BlockStore::Options> StoreOptionsFromFlags() {
  BlockStore::Options store_options;
  store_options.arena.capacity_bytes = SizeFlag(FLAGS_host_capacity, "host_capacity");
  store_options.arena.page_bytes = static_cast<uint32_t>(SizeFlag(FLAGS_page_size, "page_size"));
  store_options.arena.prefault = absl::GetFlag(FLAGS_prefault);
  store_options.arena.pin_for_gpu = absl::GetFlag(FLAGS_pin_host_arena);
  store_options.index_shards = absl::GetFlag(FLAGS_index_shards);
  absl::StatusOr<TenantQuotas> quotas = ParseTenantQuotas(absl::GetFlag(FLAGS_tenant_quotas));
  if (!quotas.ok()) return quotas.status();
  store_options.tenant_quotas = *std::move(quotas);
  if (store_options.index_shards < 1 || store_options.index_shards > BlockIndex::kMaxShards) {
    return absl::InvalidArgumentError(
        absl::StrCat("--index_shards must be 1 to ", BlockIndex::kMaxShards));
  }
  if (absl::GetFlag(FLAGS_drop_record_entries) < 0) {
    return absl::InvalidArgumentError("--drop_record_entries must be >= 0");
  }
  store_options.drop_record_entries = absl::GetFlag(FLAGS_drop_record_entries);
  store_options.block_directory =
      absl::GetFlag(FLAGS_local_direct_reads) && absl::GetFlag(FLAGS_local_socket) != "off";
  store_options.spill_high = absl::GetFlag(FLAGS_spill_high);
  store_options.spill_low = absl::GetFlag(FLAGS_spill_low);
  if (const std::string dir = absl::GetFlag(FLAGS_nvme_dir); !dir.empty()) {
    NvmeTier::Options nvme;
    nvme.store.dir = dir;
    nvme.store.data_path = absl::GetFlag(FLAGS_nvme_device);
    nvme.store.bytes = SizeFlag(FLAGS_nvme_capacity, "nvme_capacity");
    nvme.store.queue_depth = absl::GetFlag(FLAGS_nvme_queue_depth);
    const std::string engine = absl::GetFlag(FLAGS_nvme_engine);
    if (engine == "auto") {
      nvme.store.engine = NvmeFile::Engine::kAuto;
    } else if (engine == "io_uring") {
      nvme.store.engine = NvmeFile::Engine::kIoUring;
    } else if (engine == "threads") {
      nvme.store.engine = NvmeFile::Engine::kThreads;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--nvme_engine must be auto, io_uring or threads, not '", engine, "'"));
    }
    nvme.write_bytes_per_sec = SizeFlag(FLAGS_nvme_write_budget, "nvme_write_budget");
    if (absl::GetFlag(FLAGS_nvme_admit_min_hits) < 0 || absl::GetFlag(FLAGS_nvme_retry_s) < 1) {
      return absl::InvalidArgumentError(
          "--nvme_admit_min_hits must be >= 0 and --nvme_retry_s >= 1");
    }
    nvme.admit_min_hits = static_cast<uint32_t>(absl::GetFlag(FLAGS_nvme_admit_min_hits));
    nvme.retry_interval = absl::Seconds(absl::GetFlag(FLAGS_nvme_retry_s));
    store_options.nvme = nvme;
  }
  if (const uint64_t gpu_bytes = SizeFlag(FLAGS_gpu_capacity, "gpu_capacity"); gpu_bytes > 0) {
    if (absl::GetFlag(FLAGS_gpu_index) < 0 || absl::GetFlag(FLAGS_gpu_promote_after_hits) < 1) {
      return absl::InvalidArgumentError(
          "--gpu_index must be >= 0 and --gpu_promote_after_hits >= 1");
    }
    GpuTier::Options gpu;
    gpu.pool.device = absl::GetFlag(FLAGS_gpu_index);
    gpu.pool.capacity_bytes = gpu_bytes;
    gpu.pool.page_bytes = static_cast<uint32_t>(SizeFlag(FLAGS_gpu_page_size, "gpu_page_size"));
    gpu.promote_after_hits = static_cast<uint64_t>(absl::GetFlag(FLAGS_gpu_promote_after_hits));
    store_options.gpu = gpu;
    store_options.gpu_in_host_memory = absl::GetFlag(FLAGS_gpu_in_host_memory);
  }
  return store_options;
}

absl::StatusOr<DaemonOptions> DaemonOptionsFromFlags() {
  DaemonOptions d;
  absl::StatusOr<BlockStore::Options> store = StoreOptionsFromFlags();
  if (!store.ok()) return store.status();
  d.store = *std::move(store);
  d.listen = absl::GetFlag(FLAGS_listen);
  d.insecure = absl::GetFlag(FLAGS_insecure);
  d.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  d.tls_key = absl::GetFlag(FLAGS_tls_key);
  d.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  d.auth.token_file = absl::GetFlag(FLAGS_token_file);
  d.auth.local_tenants = absl::GetFlag(FLAGS_local_tenants);
  d.limits.max_block_bytes = SizeFlag(FLAGS_max_block_size, "max_block_size");
  d.limits.max_chunk_bytes =
      static_cast<uint32_t>(SizeFlag(FLAGS_max_chunk_size, "max_chunk_size"));
  d.limits.max_keys_per_request = absl::GetFlag(FLAGS_max_keys_per_request);
  d.max_message_bytes = SizeFlag(FLAGS_max_message_size, "max_message_size");
  d.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  d.connection_share = absl::GetFlag(FLAGS_connection_share);
  d.tenant_share = absl::GetFlag(FLAGS_tenant_share);
  const double stall_s = absl::GetFlag(FLAGS_client_stall_timeout_s);
  if (!(stall_s > 0)) {
    return absl::InvalidArgumentError(
        "--connection_share must be in (0, 1] and --client_stall_timeout_s above 0");
  }
  d.stall_timeout = absl::Seconds(stall_s);
  d.request_metrics = absl::GetFlag(FLAGS_request_metrics);
  d.nvme_queue_depth = absl::GetFlag(FLAGS_nvme_queue_depth);
  d.local_socket = absl::GetFlag(FLAGS_local_socket);
  d.lease_ttl = absl::Seconds(absl::GetFlag(FLAGS_lease_ttl_s));
  if (d.local_socket != "off") {
    d.local_staging_bytes = SizeFlag(FLAGS_local_staging, "local_staging");
  }
  d.local_allowed_uids = absl::GetFlag(FLAGS_local_allowed_uids);
  d.local_allowed_gids = absl::GetFlag(FLAGS_local_allowed_gids);
  d.local_direct_reads = absl::GetFlag(FLAGS_local_direct_reads);
  d.local_follow_cpu = absl::GetFlag(FLAGS_local_follow_cpu);
  d.data_port = absl::GetFlag(FLAGS_data_port);
  d.data_port_max_connections = absl::GetFlag(FLAGS_data_port_max_connections);
  d.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  d.metrics_listen_is_default = d.metrics_listen == kDefaultMetricsListen;
  d.join.etcd = absl::GetFlag(FLAGS_etcd);
  d.join.prefix = absl::GetFlag(FLAGS_etcd_prefix);
  d.join.advertise = absl::GetFlag(FLAGS_advertise);
  d.join.ttl = absl::Seconds(absl::GetFlag(FLAGS_etcd_ttl_s));
  d.join.replicas = absl::GetFlag(FLAGS_cluster_replicas);
  if (!d.join.etcd.empty()) {
    d.join.repair_bytes_per_second = SizeFlag(FLAGS_repair_rate, "repair_rate");
  }
  d.repair_rate_text = absl::GetFlag(FLAGS_repair_rate);
  d.join.etcd_security.tls_ca = absl::GetFlag(FLAGS_etcd_tls_ca);
  d.join.etcd_security.tls_cert = absl::GetFlag(FLAGS_etcd_tls_cert);
  d.join.etcd_security.tls_key = absl::GetFlag(FLAGS_etcd_tls_key);
  absl::StatusOr<std::string> etcd_password =
      EtcdLoginFromFlags(absl::GetFlag(FLAGS_etcd_user), absl::GetFlag(FLAGS_etcd_password_file));
  if (!etcd_password.ok()) return etcd_password.status();
  d.join.etcd_security.user = absl::GetFlag(FLAGS_etcd_user);
  d.join.etcd_security.password = *std::move(etcd_password);
  d.join.peer_security.tls_ca = absl::GetFlag(FLAGS_peer_tls_ca);
  if (!d.join.peer_security.tls_ca.empty()) {
    d.join.peer_security.tls_cert = d.tls_cert;
    d.join.peer_security.tls_key = d.tls_key;
  }
  const std::string peer_token_file = absl::GetFlag(FLAGS_peer_token_file);
  absl::StatusOr<std::string> peer_token = std::string();
  if (!peer_token_file.empty()) peer_token = FirstLineOf(peer_token_file, "--peer_token_file");
  if (!peer_token.ok()) return peer_token.status();
  d.join.peer_security.token = *std::move(peer_token);
  return d;
}

}  // namespace kvcache
