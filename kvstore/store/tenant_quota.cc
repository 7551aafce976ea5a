#include "kvstore/store/tenant_quota.h"

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/byte_size.h"

namespace kvcache {

absl::StatusOr<TenantQuotas> ParseTenantQuotas(absl::string_view text) {
  TenantQuotas quotas;
  for (absl::string_view entry : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    const auto bad = [entry](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tenant_quotas: '", entry, "' ", why,
          " (tenant:size for all tiers, tenant:tier:size for host, nvme or gpu)"));
    };
    std::vector<absl::string_view> parts = absl::StrSplit(entry, ':');
    if (parts.size() != 2 && parts.size() != 3) return bad("is not tenant:size or tenant:tier:size");
    const absl::string_view tenant = absl::StripAsciiWhitespace(parts.front());
    if (tenant.empty()) return bad("names no tenant");
    absl::StatusOr<uint64_t> bytes = ParseByteSize(absl::StripAsciiWhitespace(parts.back()));
    if (!bytes.ok() || *bytes == 0) return bad("has no size above 0");
    TenantQuota& quota = quotas[tenant];
    uint64_t* bound = &quota.total;
    if (parts.size() == 3) {
      const absl::string_view tier = absl::StripAsciiWhitespace(parts[1]);
      if (tier == "host") {
        bound = &quota.host;
      } else if (tier == "nvme") {
        bound = &quota.nvme;
      } else if (tier == "gpu") {
        bound = &quota.device;
      } else {
        return bad(absl::StrCat("names tier '", tier, "'; the tiers are host, nvme and gpu"));
      }
    }
    if (*bound != 0) return bad("sets a bound given before");
    *bound = *bytes;
  }
  return quotas;
}

}  // namespace kvcache
