#include "kvstore/server/service_stats.h"

#include <atomic>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/byte_size.h"
#include "membership/etcd_registration.h"

namespace kvcache {
namespace {

uint64_t Load(const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); }

void AddGpuTier(ServiceContext& context, v1::StatsResponse& response) {
  BlockStore& store = context.store;
  v1::TierStats* gpu = response.add_tiers();
  gpu->set_tier(v1::TIER_GPU);
  GpuTier* tier = store.gpu();
  if (tier == nullptr) {
    gpu->set_enabled(false);
    gpu->set_detail(store.gpu_unavailable());
    return;
  }
  const ServiceCounters& c = context.counters;
  gpu->set_enabled(!tier->failed());
  gpu->set_detail(tier->failed() ? absl::StrCat("disabled: ", tier->failure())
                                 : tier->memory().detail());
  gpu->set_capacity_bytes(tier->capacity_bytes());
  gpu->set_used_bytes(tier->used_bytes());
  gpu->set_blocks(store.device_blocks());
  gpu->set_hits(tier->copied_to_host() + Load(c.gpu_leased_blocks));
  response.set_gpu_landed_blocks(tier->landed_blocks());
  response.set_gpu_promoted_blocks(tier->promoted_blocks());
  response.set_gpu_demoted_blocks(tier->demoted_blocks());
  response.set_gpu_copied_to_host(tier->copied_to_host());
  response.set_gpu_not_admitted(tier->not_admitted());
  response.set_gpu_leased_blocks(Load(c.gpu_leased_blocks));
}

void AddHostTier(ServiceContext& context, v1::StatsResponse& response) {
  BlockStore& store = context.store;
  const ServiceCounters& c = context.counters;
  v1::TierStats* host = response.add_tiers();
  host->set_tier(v1::TIER_HOST);
  host->set_enabled(true);
  host->set_detail(absl::StrCat("DRAM arena, ", FormatBytes(store.arena().page_bytes()), " pages",
                                store.arena().fd() >= 0 ? ", memfd, " : ", anonymous, ",
                                store.arena().page_backing(), ", ", store.arena().gpu_pinning()));
  host->set_capacity_bytes(store.arena().capacity_bytes());
  host->set_used_bytes(store.arena().used_bytes());
  host->set_blocks(store.host_blocks());
  host->set_hits(Load(c.lookup_hit_keys));
  host->set_misses(Load(c.lookup_keys) - Load(c.lookup_hit_keys));
  host->set_bytes_in(Load(c.bytes_in));
  host->set_bytes_out(Load(c.bytes_out));
}

void AddNvmeTier(ServiceContext& context, v1::StatsResponse& response) {
  BlockStore& store = context.store;
  v1::TierStats* nvme = response.add_tiers();
  nvme->set_tier(v1::TIER_NVME);
  NvmeTier* tier = store.nvme();
  if (tier == nullptr) {
    nvme->set_enabled(false);
    nvme->set_detail(store.nvme_unavailable());
    return;
  }
  const NvmeTier::Counters n = tier->counters();
  nvme->set_enabled(tier->enabled());
  nvme->set_detail(tier->Detail());
  nvme->set_capacity_bytes(tier->capacity_bytes());
  nvme->set_used_bytes(tier->used_bytes());
  nvme->set_blocks(tier->blocks());
  nvme->set_hits(n.read_blocks);
  nvme->set_bytes_in(n.written_bytes);
  nvme->set_bytes_out(n.read_bytes);
  response.set_nvme_corrupt_drops(n.corrupt_drops);
  response.set_nvme_write_errors(n.write_errors);
  response.set_nvme_read_errors(n.read_errors);
  response.set_nvme_not_admitted(n.not_admitted);
}

// Per path and operation: the latency histogram and the payload bytes.
void AddRequests(ServiceContext& context, v1::StatsResponse& response) {
  static constexpr const char* kPaths[] = {"grpc", "data_port", "same_host"};
  static constexpr const char* kOps[] = {"lookup", "fetch", "put"};
  ServiceCounters& c = context.counters;
  for (size_t p = 0; p < std::size(kPaths); ++p) {
    for (size_t o = 0; o < std::size(kOps); ++o) {
      const LatencyHistogram::Snapshot snap = c.Latency(RequestPath(p), RequestOp(o)).Take();
      v1::LatencyHistogram* h = response.add_latencies();
      h->set_path(kPaths[p]);
      h->set_op(kOps[o]);
      for (uint64_t bound : LatencyHistogram::kBoundsMicros) h->add_bucket_upper_micros(bound);
      for (uint64_t count : snap.counts) h->add_counts(count);
      h->set_count(snap.count);
      h->set_sum_micros(snap.sum_micros);
      h->set_bytes(Load(c.path_bytes[p][o]));
    }
  }
}

// Misses by operation and reason; those never seen are left out.
void AddMisses(const ServiceCounters& c, v1::StatsResponse& response) {
  for (size_t r = 0; r < kMissReasons; ++r) {
    for (const auto& [op, counts] :
         {std::pair{"lookup", c.lookup_misses}, std::pair{"fetch", c.fetch_misses}}) {
      const uint64_t n = Load(counts[r]);
      if (n == 0) continue;
      v1::MissCount* m = response.add_misses();
      m->set_op(op);
      m->set_reason(MissReasonName(static_cast<MissReason>(r)));
      m->set_count(n);
    }
  }
}

void AddTenants(BlockStore& store, v1::StatsResponse& response) {
  std::map<std::string, v1::TenantUsage> tenants;  // sorted: a stable order
  for (const auto& [ns, usage] : store.UsageByNamespace()) {
    const std::string tenant = store.namespaces().Name(ns).tenant;
    v1::TenantUsage& t = tenants[tenant];
    t.set_tenant(tenant);
    t.set_blocks(t.blocks() + usage.blocks);
    t.set_bytes(t.bytes() + usage.bytes);
    t.set_host_bytes(t.host_bytes() + usage.host_bytes);
    t.set_nvme_bytes(t.nvme_bytes() + usage.nvme_bytes);
    t.set_gpu_bytes(t.gpu_bytes() + usage.device_bytes);
    t.set_namespaces(t.namespaces() + 1);
    const TenantQuota quota = store.QuotaOf(tenant);
    t.set_quota_bytes(quota.total);
    t.set_host_quota_bytes(quota.host);
    t.set_nvme_quota_bytes(quota.nvme);
    t.set_gpu_quota_bytes(quota.device);
  }
  for (auto& [name, t] : tenants) *response.add_tenants() = std::move(t);
}

void AddDaemon(ServiceContext& context, v1::StatsResponse& response) {
  BlockStore& store = context.store;
  const ServiceCounters& c = context.counters;
  if (const StatsLine* r = context.repairer.load(std::memory_order_acquire)) {
    response.set_repair(r->Describe());
  }
  if (const EtcdRegistration* r = context.cluster.load(std::memory_order_acquire)) {
    response.set_cluster(r->Describe());
  }
  response.set_spilled_blocks(store.spilled_blocks());
  response.set_promoted_blocks(store.promoted_blocks());
  response.set_nvme_evicted_blocks(store.nvme_evicted_blocks());
  response.set_nvme_restored_blocks(store.restored_blocks());
  response.set_nvme_restore_seconds(store.restore_seconds());
  response.set_pinned_bytes(Load(store.pinned_bytes()));
  response.set_staged_bytes(Load(store.staged_bytes()));
  response.set_lookups(Load(c.lookups));
  response.set_lookup_keys(Load(c.lookup_keys));
  response.set_lookup_hit_keys(Load(c.lookup_hit_keys));
  response.set_puts_stored(Load(c.puts_stored));
  response.set_puts_rejected(Load(c.puts_rejected));
  response.set_fetches(Load(c.fetches));
  response.set_evicted_blocks(store.evicted_blocks());
  response.set_version(kVersion);
  response.set_uptime_seconds(absl::ToInt64Seconds(absl::Now() - context.started));
  response.set_page_bytes(store.arena().page_bytes());
  response.set_direct_reads(Load(c.direct_reads));
  response.set_direct_read_bytes(Load(c.direct_read_bytes));
  response.set_leases_held(Load(c.leases_held));
  if (const BlockDirectory* d = store.directory(); d != nullptr) {
    response.set_block_directory(absl::StrCat(d->listed(), " blocks listed, ", d->unlisted(),
                                              " left unlisted since start (bucket full), ",
                                              FormatBytes(d->bytes())));
  } else {
    response.set_block_directory(absl::StrCat("off (", store.directory_unavailable(), ")"));
  }
}

}  // namespace

void FillStats(ServiceContext& context, v1::StatsResponse& response) {
  AddGpuTier(context, response);
  AddHostTier(context, response);
  AddNvmeTier(context, response);
  AddRequests(context, response);
  AddMisses(context.counters, response);
  AddTenants(context.store, response);
  AddDaemon(context, response);
}

}  // namespace kvcache
