// BlockStore's per-tenant quotas (Options::tenant_quotas): what a tenant's
// blocks hold, commits within its bounds, its NVMe and GPU room, and
// pressure that spares tenants within theirs.
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "kvstore/store/block_store.h"
#include "kvstore/store/staged_block.h"

namespace kvcache {
namespace {

NamespaceUsage SumOf(const absl::flat_hash_map<NamespaceId, NamespaceUsage>& usage,
                     const std::vector<NamespaceId>& ids) {
  NamespaceUsage sum;
  for (NamespaceId ns : ids) {
    auto it = usage.find(ns);
    if (it == usage.end()) continue;
    sum.blocks += it->second.blocks;
    sum.bytes += it->second.bytes;
    sum.host_bytes += it->second.host_bytes;
    sum.nvme_bytes += it->second.nvme_bytes;
    sum.device_bytes += it->second.device_bytes;
  }
  return sum;
}

// The bound that shields a tenant's copies in a tier, and what it measures.
std::pair<uint64_t, uint64_t> BoundAndUse(const TenantQuota& quota, const NamespaceUsage& usage,
                                          LeafResidency tier) {
  const uint64_t own = tier == LeafResidency::kOnHost     ? quota.host
                       : tier == LeafResidency::kNvmeOnly ? quota.nvme
                                                          : quota.device;
  if (own == 0) return {quota.total, usage.bytes};
  const uint64_t used = tier == LeafResidency::kOnHost     ? usage.host_bytes
                        : tier == LeafResidency::kNvmeOnly ? usage.nvme_bytes
                                                           : usage.device_bytes;
  return {own, used};
}

}  // namespace

absl::flat_hash_map<std::string, std::unique_ptr<Mutex>> BlockStore::QuotaLocks(
    const TenantQuotas& quotas) {
  absl::flat_hash_map<std::string, std::unique_ptr<Mutex>> locks;
  for (const auto& [tenant, quota] : quotas) locks[tenant] = std::make_unique<Mutex>();
  return locks;
}

TenantQuota BlockStore::QuotaOf(absl::string_view tenant) const {
  auto it = tenant_quotas_.find(tenant);
  return it == tenant_quotas_.end() ? TenantQuota{} : it->second;
}

NamespaceUsage BlockStore::TenantUsage(absl::string_view tenant) {
  return SumOf(index_->UsageByNamespace(), namespaces_.IdsOfTenant(tenant));
}

std::function<bool(NamespaceId)> BlockStore::TenantFilter(const std::string& tenant) {
  const std::vector<NamespaceId> own = namespaces_.IdsOfTenant(tenant);
  return [mine = absl::flat_hash_set<NamespaceId>(own.begin(), own.end())](NamespaceId ns) {
    return mine.contains(ns);
  };
}

absl::StatusOr<InsertOutcome> BlockStore::CommitWithinQuota(const std::string& tenant,
                                                            StagedBlock& staged) {
  const TenantQuota quota = QuotaOf(tenant);
  if (quota.total == 0 && quota.host == 0) return Commit(staged);
  const uint64_t size = staged.meta().size;
  for (const auto& [bound, what] : {std::pair{quota.total, "quota"}, {quota.host, "host quota"}}) {
    if (bound != 0 && size > bound) {
      return absl::ResourceExhaustedError(absl::StrCat("a ", size, "-byte block exceeds tenant ",
                                                       tenant, "'s ", what, " of ", bound,
                                                       " bytes"));
    }
  }
  MutexLock lock(&QuotaLockOf(tenant));
  const std::function<bool(NamespaceId)> mine = TenantFilter(tenant);
  const auto cannot = [&](uint64_t used, uint64_t bound, const char* where) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "tenant ", tenant, " holds ", used, " of its ", bound, " bytes", where,
        " in blocks it cannot drop (pinned, or parents of this one)"));
  };
  if (quota.total != 0) {
    for (uint64_t used = TenantUsage(tenant).bytes; used + size > quota.total;
         used = TenantUsage(tenant).bytes) {
      // Its own leaves, coldest first, in every tier they may sit in.
      if (!index_->EvictOneLeafOf(LeafResidency::kOnHost, mine).has_value() &&
          !index_->EvictOneLeafOf(LeafResidency::kNvmeOnly, mine).has_value() &&
          !index_->EvictOneLeafOf(LeafResidency::kDeviceOnly, mine).has_value()) {
        return cannot(used, quota.total, "");
      }
      evicted_blocks_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (quota.host != 0) {
    for (uint64_t used = TenantUsage(tenant).host_bytes; used + size > quota.host;
         used = TenantUsage(tenant).host_bytes) {
      // A host copy with an NVMe copy below leaves the host and nothing is
      // lost; only then its coldest host leaf goes.
      if (index_->DropColdestHostCopyOf(mine).has_value()) continue;
      if (!index_->EvictOneLeafOf(LeafResidency::kOnHost, mine).has_value()) {
        return cannot(used, quota.host, " on the host");
      }
      evicted_blocks_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return Commit(staged);
}

bool BlockStore::MakeNvmeRoom(NamespaceId ns, uint64_t bytes, uint64_t pending) {
  if (tenant_quotas_.empty()) return true;
  const std::string tenant = namespaces_.Name(ns).tenant;
  const uint64_t bound = QuotaOf(tenant).nvme;
  if (bound == 0) return true;
  if (bytes + pending > bound) return false;
  MutexLock lock(&QuotaLockOf(tenant));
  const std::function<bool(NamespaceId)> mine = TenantFilter(tenant);
  while (TenantUsage(tenant).nvme_bytes + pending + bytes > bound) {
    if (!index_->EvictOneLeafOf(LeafResidency::kNvmeOnly, mine).has_value()) return false;
    nvme_evicted_.fetch_add(1, std::memory_order_relaxed);
  }
  return true;
}

void BlockStore::TrimHostToQuota(NamespaceId ns) {
  if (tenant_quotas_.empty()) return;
  const std::string tenant = namespaces_.Name(ns).tenant;
  const uint64_t bound = QuotaOf(tenant).host;
  if (bound == 0) return;
  MutexLock lock(&QuotaLockOf(tenant));
  const std::function<bool(NamespaceId)> mine = TenantFilter(tenant);
  // Only copies that lose nothing by going: a read must not drop blocks.
  while (TenantUsage(tenant).host_bytes > bound && index_->DropColdestHostCopyOf(mine)) {
  }
}

uint64_t BlockStore::DeviceExcess(NamespaceId ns, uint64_t bytes) {
  if (tenant_quotas_.empty()) return 0;
  const std::string tenant = namespaces_.Name(ns).tenant;
  const uint64_t bound = QuotaOf(tenant).device;
  if (bound == 0) return 0;
  const uint64_t used = TenantUsage(tenant).device_bytes;
  return used + bytes > bound ? used + bytes - bound : 0;
}

GpuTier::TenantRoom BlockStore::GpuTenantRoom() {
  GpuTier::TenantRoom room;
  bool any = false;
  for (const auto& [tenant, quota] : tenant_quotas_) any |= quota.device_or_total() != 0;
  if (!any) return room;
  room.excess = [this](NamespaceId ns, uint64_t bytes) { return DeviceExcess(ns, bytes); };
  room.tenant_of = [this](NamespaceId ns) { return TenantFilter(namespaces_.Name(ns).tenant); };
  room.demotable = [this] { return Unshielded(LeafResidency::kDeviceOnly); };
  return room;
}

std::function<bool(NamespaceId)> BlockStore::Unshielded(LeafResidency tier) {
  if (tenant_quotas_.empty()) return nullptr;
  const absl::flat_hash_map<NamespaceId, NamespaceUsage> usage = index_->UsageByNamespace();
  absl::flat_hash_set<NamespaceId> shielded;
  for (const auto& [tenant, quota] : tenant_quotas_) {
    const std::vector<NamespaceId> ids = namespaces_.IdsOfTenant(tenant);
    const auto [bound, used] = BoundAndUse(quota, SumOf(usage, ids), tier);
    if (bound == 0 || used > bound) continue;
    shielded.insert(ids.begin(), ids.end());
  }
  return [shielded = std::move(shielded)](NamespaceId ns) { return !shielded.contains(ns); };
}

std::optional<uint64_t> BlockStore::EvictForRoom(LeafResidency residency) {
  return index_->EvictOneLeafOf(residency, Unshielded(residency));
}

}  // namespace kvcache
