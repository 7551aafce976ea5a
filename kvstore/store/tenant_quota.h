// Per-tenant quotas: the most bytes a tenant's blocks may hold, in all tiers
// together and in each tier (kvstored --tenant_quotas).
#ifndef KVCACHE_KVSTORE_STORE_TENANT_QUOTA_H_
#define KVCACHE_KVSTORE_STORE_TENANT_QUOTA_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvcache {

// Each bound is in bytes; 0 sets none. A block with copies in several tiers
// counts in each of them, and once in `total`.
struct TenantQuota {
  uint64_t total = 0;
  uint64_t host = 0;    // host DRAM pages
  uint64_t nvme = 0;    // NVMe records
  uint64_t device = 0;  // GPU pages

  bool any() const { return total != 0 || host != 0 || nvme != 0 || device != 0; }
  // The bound that protects the tenant in a tier: the tier's own, else the
  // total (0: none).
  uint64_t host_or_total() const { return host != 0 ? host : total; }
  uint64_t nvme_or_total() const { return nvme != 0 ? nvme : total; }
  uint64_t device_or_total() const { return device != 0 ? device : total; }
};

using TenantQuotas = absl::flat_hash_map<std::string, TenantQuota>;

// Parses "tenant:size" (all tiers together) and "tenant:tier:size" (tier:
// host, nvme or gpu), comma-separated: "a:8GiB,a:host:2GiB,b:nvme:100GiB".
// Sizes as ParseByteSize reads them. INVALID_ARGUMENT, naming the entry, for
// a malformed entry, a zero size, an unknown tier, or a bound given twice.
absl::StatusOr<TenantQuotas> ParseTenantQuotas(absl::string_view text);

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_STORE_TENANT_QUOTA_H_
