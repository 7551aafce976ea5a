// BlockStore's per-tenant quotas (Options::tenant_quotas): what a tenant's
// blocks hold, commits within a quota, and pressure that spares tenants
// within theirs.
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "kvstore/store/block_store.h"
#include "kvstore/store/staged_block.h"

namespace kvcache {

uint64_t BlockStore::QuotaOf(absl::string_view tenant) const {
  auto it = tenant_quotas_.find(tenant);
  return it == tenant_quotas_.end() ? 0 : it->second;
}

uint64_t BlockStore::TenantBytes(absl::string_view tenant) {
  const absl::flat_hash_map<NamespaceId, EvictCount> usage = index_->UsageByNamespace();
  uint64_t bytes = 0;
  for (NamespaceId ns : namespaces_.IdsOfTenant(tenant)) {
    if (auto it = usage.find(ns); it != usage.end()) bytes += it->second.bytes;
  }
  return bytes;
}

absl::StatusOr<InsertOutcome> BlockStore::CommitWithinQuota(const std::string& tenant,
                                                            StagedBlock& staged) {
  const uint64_t quota = QuotaOf(tenant);
  if (quota == 0) return Commit(staged);
  const uint64_t size = staged.meta().size;
  if (size > quota) {
    return absl::ResourceExhaustedError(absl::StrCat("a ", size, "-byte block exceeds tenant ",
                                                     tenant, "'s quota of ", quota, " bytes"));
  }
  MutexLock lock(&quota_mu_);
  const std::vector<NamespaceId> own = namespaces_.IdsOfTenant(tenant);
  const absl::flat_hash_set<NamespaceId> mine(own.begin(), own.end());
  const auto is_mine = [&mine](NamespaceId ns) { return mine.contains(ns); };
  for (uint64_t used = TenantBytes(tenant); used + size > quota; used = TenantBytes(tenant)) {
    // Its own leaves, coldest first, in every tier they may sit in.
    if (!index_->EvictOneLeafOf(LeafResidency::kOnHost, is_mine).has_value() &&
        !index_->EvictOneLeafOf(LeafResidency::kNvmeOnly, is_mine).has_value() &&
        !index_->EvictOneLeafOf(LeafResidency::kDeviceOnly, is_mine).has_value()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "tenant ", tenant, " holds ", used, " of its ", quota,
          " bytes in blocks it cannot drop (pinned, or parents of this one)"));
    }
    evicted_blocks_.fetch_add(1, std::memory_order_relaxed);
  }
  return Commit(staged);
}

std::optional<uint64_t> BlockStore::EvictForRoom() {
  if (tenant_quotas_.empty()) return index_->EvictOneLeaf(LeafResidency::kOnHost);
  // Tenants within their quota are out of reach of anyone's pressure.
  absl::flat_hash_set<NamespaceId> shielded;
  for (const auto& [tenant, quota] : tenant_quotas_) {
    if (TenantBytes(tenant) > quota) continue;
    for (NamespaceId ns : namespaces_.IdsOfTenant(tenant)) shielded.insert(ns);
  }
  return index_->EvictOneLeafOf(LeafResidency::kOnHost,
                                [&shielded](NamespaceId ns) { return !shielded.contains(ns); });
}

}  // namespace kvcache
