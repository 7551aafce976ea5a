// What every RPC handler of the daemon shares: the store, the limits it
// enforces on input, and the counters Stats reports.
//
// Thread safety: the store and counters are thread-safe; limits are const.
#ifndef KVCACHE_KVSTORE_SERVER_SERVICE_CONTEXT_H_
#define KVCACHE_KVSTORE_SERVER_SERVICE_CONTEXT_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/latency_histogram.h"
#include "grpcpp/grpcpp.h"
#include "kvstore/server/authenticator.h"
#include "kvstore/store/block_store.h"
#include "kvstore/store/connection_share.h"
#include "kvstore/store/io_workers.h"
#include "kvstore/index/miss_reason.h"
#include "kvstore/server/stall_watchdog.h"

namespace kvcache {

class EtcdRegistration;

// A part of the daemon above the server that Stats reports in one line
// (replica repair, //repair): the server knows it only by this.
class StatsLine {
 public:
  virtual ~StatsLine() = default;
  virtual std::string Describe() const = 0;
};

inline constexpr char kVersion[] = "0.1.0";

// Checked before anything is allocated for a request.
struct ServiceLimits {
  uint64_t max_block_bytes = 64ull << 20;
  uint32_t max_keys_per_request = 1 << 16;
  uint32_t max_fetch_items = 1 << 14;
  uint32_t max_chunk_bytes = 4 << 20;  // Fetch payload per message
  size_t max_namespace_bytes = 512;
  uint32_t max_list_page = 1000;
};

// Which way a request came, and what it asked: the latency histograms'
// dimensions (Stats names them "grpc", "data_port", "same_host" and
// "lookup", "fetch", "put").
enum class RequestPath { kGrpc, kDataPort, kSameHost, kCount };
enum class RequestOp { kLookup, kFetch, kPut, kCount };

struct ServiceCounters {
  // Off (kvstored --request_metrics=false): no latency is recorded and no
  // miss is classified, so kvbench can measure what they cost. Set before
  // the server starts.
  bool request_metrics = true;
  // Every request's latency, by path and operation.
  LatencyHistogram& Latency(RequestPath path, RequestOp op) {
    return latency[static_cast<size_t>(path)][static_cast<size_t>(op)];
  }
  void RecordLatency(RequestPath path, RequestOp op, absl::Duration took) {
    if (request_metrics) Latency(path, op).Record(took);
  }
  LatencyHistogram latency[static_cast<size_t>(RequestPath::kCount)]
                          [static_cast<size_t>(RequestOp::kCount)];
  // Payload bytes moved, by path and operation (fetch: sent; put: received),
  // also added to bytes_in / bytes_out.
  void AddBytes(RequestPath path, RequestOp op, uint64_t n) {
    path_bytes[static_cast<size_t>(path)][static_cast<size_t>(op)].fetch_add(
        n, std::memory_order_relaxed);
    (op == RequestOp::kPut ? bytes_in : bytes_out).fetch_add(n, std::memory_order_relaxed);
  }
  std::atomic<uint64_t> path_bytes[static_cast<size_t>(RequestPath::kCount)]
                                  [static_cast<size_t>(RequestOp::kCount)] = {};
  // Lookups that stopped before the end of their chain, by the reason of the
  // block they stopped at; and fetches that did, likewise.
  void CountMiss(RequestOp op, MissReason reason) {
    (op == RequestOp::kLookup ? lookup_misses : fetch_misses)[static_cast<size_t>(reason)]
        .fetch_add(1, std::memory_order_relaxed);
  }
  std::atomic<uint64_t> lookup_misses[kMissReasons] = {};
  std::atomic<uint64_t> fetch_misses[kMissReasons] = {};

  std::atomic<uint64_t> lookups{0};
  std::atomic<uint64_t> lookup_keys{0};
  std::atomic<uint64_t> lookup_hit_keys{0};
  std::atomic<uint64_t> puts_stored{0};
  std::atomic<uint64_t> puts_rejected{0};
  std::atomic<uint64_t> fetches{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};
  std::atomic<uint64_t> direct_reads{0};  // blocks, as local workers report them
  std::atomic<uint64_t> direct_read_bytes{0};  // their bytes, likewise
  std::atomic<uint64_t> gpu_leased_blocks{0};
  std::atomic<uint64_t> leases_held{0};  // same-host leases held now (a gauge)  // blocks local workers copied from GPU pages
};

struct ServiceContext {
  BlockStore& store;
  const ServiceLimits limits;
  const absl::Time started;
  ServiceCounters counters;
  // The bulk data port Hello advertises; 0 while it is off.
  std::atomic<uint32_t> data_port{0};
  // Set before the gRPC server starts, read-only after: this daemon's random
  // id and its same-host socket ("" if off), both advertised by Hello.
  std::string instance_id;
  std::string local_socket;
  // Where /metrics is served ("" if not), for Stats; set likewise.
  std::string metrics_address;
  // The membership line Stats shows; set once the daemon registers (after
  // the server starts), never freed before the server stops. Not owned.
  std::atomic<const EtcdRegistration*> cluster{nullptr};
  // The replica repair Stats shows, set like `cluster`. Not owned.
  std::atomic<const StatsLine*> repairer{nullptr};
  // Where gRPC Fetches run when a read may wait on NVMe or on a copy down
  // from the GPU; null without either tier (they then run on gRPC's thread,
  // memory work only). Not owned.
  IoWorkers* io_workers = nullptr;
  // What one client connection may stage and pin (connection_share.h);
  // null: unbounded. Not owned.
  ConnectionShares* shares = nullptr;
  // Cuts off put and fetch streams that wait on their client too long
  // (stall_watchdog.h); null: never. Not owned.
  StallWatchdog* stall_watchdog = nullptr;
  // Who callers are; null: authentication off (every caller is
  // kDefaultTenant, admin). Not owned.
  const Authenticator* auth = nullptr;
};

// Who the caller of a gRPC call is (authenticator.h): the tenant and role
// its token or client certificate maps to, or kDefaultTenant and admin while
// authentication is off; an admin that names a tenant to act for
// (kActForTenantHeader) is an admin in that tenant (ActFor).
// UNAUTHENTICATED when it proves no one; PERMISSION_DENIED for a non-admin
// acting for another tenant.
absl::StatusOr<Identity> IdentityOf(const ServiceContext& service,
                                    const grpc::CallbackServerContext& context);

// The share of the caller's connection (by peer address) for `tenant`'s
// calls, or null when shares are off.
std::shared_ptr<ConnectionShare> ShareOf(ServiceContext& service,
                                         const grpc::CallbackServerContext& context,
                                         const std::string& tenant);

// INVALID_ARGUMENT unless 1 <= size <= limits.max_namespace_bytes.
absl::Status ValidateNamespace(absl::string_view ns, const ServiceLimits& limits);

// The single place an absl::Status becomes a grpc::Status.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_SERVICE_CONTEXT_H_
