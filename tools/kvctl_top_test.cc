#include "tools/kvctl_top.h"

#include "gtest/gtest.h"

namespace kvcache {
namespace {

v1::StatsResponse Sample(uint64_t lookups, uint64_t keys, uint64_t hits, uint64_t fetch_fast,
                         uint64_t fetch_slow) {
  v1::StatsResponse s;
  s.set_lookups(lookups);
  s.set_lookup_keys(keys);
  s.set_lookup_hit_keys(hits);
  v1::TierStats* host = s.add_tiers();
  host->set_tier(v1::TIER_HOST);
  host->set_capacity_bytes(100 << 20);
  host->set_used_bytes(25 << 20);
  host->set_bytes_out(keys << 20);
  v1::LatencyHistogram* h = s.add_latencies();
  h->set_path("data_port");
  h->set_op("fetch");
  for (uint64_t bound : {100, 1000}) h->add_bucket_upper_micros(bound);
  for (uint64_t c : {fetch_fast, fetch_slow, uint64_t{0}}) h->add_counts(c);
  v1::LatencyHistogram* idle = s.add_latencies();
  idle->set_path("grpc");
  idle->set_op("put");
  for (uint64_t bound : {100, 1000}) idle->add_bucket_upper_micros(bound);
  for (int b = 0; b < 3; ++b) idle->add_counts(7);  // the same in both samples
  return s;
}

TEST(KvctlTopTest, ARowIsTheDifferenceBetweenTwoAnswers) {
  const v1::StatsResponse before = Sample(10, 100, 50, 5, 0);
  const v1::StatsResponse now = Sample(30, 300, 200, 103, 2);  // 98 fast, 2 slow since
  const std::string row = TopRow(before, now, 2.0, "14:05:01");
  EXPECT_NE(row.find("14:05:01"), std::string::npos) << row;
  EXPECT_NE(row.find(" 10.0 "), std::string::npos) << row;   // lookups/s
  EXPECT_NE(row.find(" 100.0 "), std::string::npos) << row;  // keys/s
  EXPECT_NE(row.find(" 75.0 "), std::string::npos) << row;   // hit%: 150 of 200
  EXPECT_NE(row.find("100.0 MiB"), std::string::npos) << row;  // out/s
  EXPECT_NE(row.find(" 25% "), std::string::npos) << row;
  EXPECT_NE(row.find("data_port fetch 100us/1ms"), std::string::npos) << row;
  EXPECT_EQ(row.find("grpc put"), std::string::npos) << row;  // no requests in between
  EXPECT_NE(TopHeader().find("lookups/s"), std::string::npos);
}

}  // namespace
}  // namespace kvcache
