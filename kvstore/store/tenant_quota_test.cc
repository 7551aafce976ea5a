#include "kvstore/store/tenant_quota.h"

#include "gtest/gtest.h"

namespace kvcache {
namespace {

TEST(TenantQuotaTest, ParsesTotalsAndTiersPerTenant) {
  absl::StatusOr<TenantQuotas> q =
      ParseTenantQuotas(" a:8GiB, a:host:2GiB ,a:nvme:100GiB,a:gpu:1GiB,b:nvme:4KiB");
  ASSERT_TRUE(q.ok()) << q.status();
  ASSERT_EQ(q->size(), 2u);
  const TenantQuota& a = q->at("a");
  EXPECT_EQ(a.total, 8ull << 30);
  EXPECT_EQ(a.host, 2ull << 30);
  EXPECT_EQ(a.nvme, 100ull << 30);
  EXPECT_EQ(a.device, 1ull << 30);
  const TenantQuota& b = q->at("b");
  EXPECT_EQ(b.total, 0u);
  EXPECT_EQ(b.host, 0u);
  EXPECT_EQ(b.nvme, 4096u);
  EXPECT_TRUE(b.any());
  EXPECT_EQ(b.nvme_or_total(), 4096u);
  EXPECT_EQ(b.host_or_total(), 0u);
  EXPECT_EQ(a.device_or_total(), 1ull << 30);
  EXPECT_FALSE(TenantQuota{}.any());
  EXPECT_TRUE(ParseTenantQuotas("")->empty());
}

TEST(TenantQuotaTest, RefusesWhatItCannotReadNamingTheEntry) {
  for (const char* text : {"a", "a:", ":8GiB", "a:0", "a:lots", "a:disk:8GiB", "a:host:8GiB:x",
                           "a:8GiB,a:1GiB", "a:host:1GiB,a:host:2GiB"}) {
    absl::StatusOr<TenantQuotas> q = ParseTenantQuotas(text);
    ASSERT_FALSE(q.ok()) << text;
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_NE(q.status().message().find("--tenant_quotas"), std::string::npos) << q.status();
  }
  EXPECT_NE(ParseTenantQuotas("a:disk:1GiB").status().message().find("host, nvme and gpu"),
            std::string::npos);
}

}  // namespace
}  // namespace kvcache
