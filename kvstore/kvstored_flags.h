// kvstored's flags, and the options they make: what `kvstored --help`
// lists, in one place, apart from the daemon's start-up (kvstored.cc).
#ifndef KVCACHE_KVSTORE_KVSTORED_FLAGS_H_
#define KVCACHE_KVSTORE_KVSTORED_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "kvstore/store/block_store.h"
#include "kvstore/daemon.h"

ABSL_DECLARE_FLAG(std::string, listen);
ABSL_DECLARE_FLAG(std::string, metrics_listen);
ABSL_DECLARE_FLAG(bool, insecure);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, tls_client_ca);
ABSL_DECLARE_FLAG(std::string, token_file);
ABSL_DECLARE_FLAG(std::string, local_tenants);
ABSL_DECLARE_FLAG(std::string, tenant_quotas);
ABSL_DECLARE_FLAG(double, tenant_share);
ABSL_DECLARE_FLAG(std::string, etcd_tls_ca);
ABSL_DECLARE_FLAG(std::string, etcd_tls_cert);
ABSL_DECLARE_FLAG(std::string, etcd_tls_key);
ABSL_DECLARE_FLAG(std::string, etcd_user);
ABSL_DECLARE_FLAG(std::string, etcd_password_file);
ABSL_DECLARE_FLAG(std::string, peer_tls_ca);
ABSL_DECLARE_FLAG(std::string, peer_token_file);
ABSL_DECLARE_FLAG(int, data_port);
ABSL_DECLARE_FLAG(int, data_port_max_connections);
ABSL_DECLARE_FLAG(std::string, local_socket);
ABSL_DECLARE_FLAG(std::string, local_allowed_uids);
ABSL_DECLARE_FLAG(std::string, local_allowed_gids);
ABSL_DECLARE_FLAG(bool, local_direct_reads);
ABSL_DECLARE_FLAG(bool, local_follow_cpu);
ABSL_DECLARE_FLAG(int, lease_ttl_s);
ABSL_DECLARE_FLAG(std::string, local_staging);
ABSL_DECLARE_FLAG(std::string, host_capacity);
ABSL_DECLARE_FLAG(std::string, page_size);
ABSL_DECLARE_FLAG(std::string, max_block_size);
ABSL_DECLARE_FLAG(std::string, max_chunk_size);
ABSL_DECLARE_FLAG(std::string, max_message_size);
ABSL_DECLARE_FLAG(std::string, nvme_dir);
ABSL_DECLARE_FLAG(std::string, nvme_device);
ABSL_DECLARE_FLAG(std::string, nvme_capacity);
ABSL_DECLARE_FLAG(std::string, nvme_engine);
ABSL_DECLARE_FLAG(int, nvme_queue_depth);
ABSL_DECLARE_FLAG(std::string, nvme_write_budget);
ABSL_DECLARE_FLAG(int, nvme_admit_min_hits);
ABSL_DECLARE_FLAG(double, spill_high);
ABSL_DECLARE_FLAG(double, spill_low);
ABSL_DECLARE_FLAG(int, nvme_retry_s);
ABSL_DECLARE_FLAG(bool, prefault);
ABSL_DECLARE_FLAG(bool, pin_host_arena);
ABSL_DECLARE_FLAG(std::string, gpu_capacity);
ABSL_DECLARE_FLAG(int, gpu_index);
ABSL_DECLARE_FLAG(std::string, gpu_page_size);
ABSL_DECLARE_FLAG(int, gpu_promote_after_hits);
ABSL_DECLARE_FLAG(bool, gpu_in_host_memory);
ABSL_DECLARE_FLAG(int, max_concurrent_streams);
ABSL_DECLARE_FLAG(int, max_keys_per_request);
ABSL_DECLARE_FLAG(double, client_stall_timeout_s);
ABSL_DECLARE_FLAG(double, connection_share);
ABSL_DECLARE_FLAG(int, index_shards);
ABSL_DECLARE_FLAG(bool, request_metrics);
ABSL_DECLARE_FLAG(int, drop_record_entries);
ABSL_DECLARE_FLAG(int, drain_timeout_s);
ABSL_DECLARE_FLAG(std::string, etcd);
ABSL_DECLARE_FLAG(std::string, etcd_prefix);
ABSL_DECLARE_FLAG(std::string, advertise);
ABSL_DECLARE_FLAG(int, cluster_replicas);
ABSL_DECLARE_FLAG(std::string, repair_rate);
ABSL_DECLARE_FLAG(int, etcd_ttl_s);
ABSL_DECLARE_FLAG(std::string, port_file);

namespace kvcache {

// Where /metrics is served unless --metrics_listen says otherwise: the
// start of Prometheus' exporter port range.
inline constexpr char kDefaultMetricsListen[] = "127.0.0.1:9464";

// A size flag's value ("256KiB", "16GiB"); a bad one ends the process with
// a message naming --`name` (exit status 2).
uint64_t SizeFlag(const absl::Flag<std::string>& flag, const char* name);

// The cache's tiers as the flags describe them. INVALID_ARGUMENT naming
// the flag for a value out of its range.
absl::StatusOr<BlockStore::Options> StoreOptionsFromFlags();

// Everything the flags say the daemon is (the tiers too). INVALID_ARGUMENT
// naming the flag for a value out of its range.
absl::StatusOr<DaemonOptions> DaemonOptionsFromFlags();

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_KVSTORED_FLAGS_H_
