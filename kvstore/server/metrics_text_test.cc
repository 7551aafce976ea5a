#include "kvstore/server/metrics_text.h"

#include <map>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

// Every sample line of `text`, keyed by its name and labels.
std::map<std::string, std::string> Samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

TEST(MetricsTextTest, RendersEveryFigureWithItsFamilyLines) {
  v1::StatsResponse s;
  s.set_version("0.9 \"quoted\"\\");
  s.set_uptime_seconds(42);
  v1::TierStats* host = s.add_tiers();
  host->set_tier(v1::TIER_HOST);
  host->set_enabled(true);
  host->set_capacity_bytes(64 << 20);
  host->set_used_bytes(327680);
  host->set_blocks(5);
  host->set_hits(5);
  host->set_misses(3);
  v1::TierStats* nvme = s.add_tiers();
  nvme->set_tier(v1::TIER_NVME);
  nvme->set_enabled(false);
  s.set_lookup_keys(8);
  s.set_lookup_hit_keys(5);
  s.set_puts_stored(5);
  s.set_puts_rejected(1);
  s.set_nvme_read_errors(2);
  s.set_nvme_restore_seconds(0.25);
  v1::LatencyHistogram* lookup = s.add_latencies();
  lookup->set_path("grpc");
  lookup->set_op("lookup");
  for (uint64_t bound : {10, 100, 1000}) lookup->add_bucket_upper_micros(bound);
  for (uint64_t count : {2, 0, 3, 1}) lookup->add_counts(count);
  lookup->set_count(6);
  lookup->set_sum_micros(2500000);
  v1::LatencyHistogram* put = s.add_latencies();
  put->set_path("same_host");
  put->set_op("put");
  put->set_bytes(1 << 21);
  v1::MissCount* miss = s.add_misses();
  miss->set_op("lookup");
  miss->set_reason("evicted_pressure");
  miss->set_count(7);
  miss = s.add_misses();
  miss->set_op("fetch");
  miss->set_reason("integrity");
  miss->set_count(2);
  v1::TenantUsage* tenant = s.add_tenants();
  tenant->set_tenant("team-a");
  tenant->set_blocks(3);
  tenant->set_bytes(3 << 16);
  const std::string text = RenderMetrics(s);
  const std::map<std::string, std::string> samples = Samples(text);

  EXPECT_EQ(samples.at(R"(kvstored_build_info{version="0.9 \"quoted\"\\"})"), "1");
  EXPECT_EQ(samples.at("kvstored_uptime_seconds"), "42");
  EXPECT_EQ(samples.at(R"(kvstored_tier_enabled{tier="host"})"), "1");
  EXPECT_EQ(samples.at(R"(kvstored_tier_enabled{tier="nvme"})"), "0");
  EXPECT_EQ(samples.at(R"(kvstored_tier_capacity_bytes{tier="host"})"), "67108864");
  EXPECT_EQ(samples.at(R"(kvstored_tier_used_bytes{tier="host"})"), "327680");
  EXPECT_EQ(samples.at(R"(kvstored_tier_blocks{tier="host"})"), "5");
  EXPECT_EQ(samples.at(R"(kvstored_tier_misses_total{tier="host"})"), "3");
  EXPECT_EQ(samples.at("kvstored_lookup_keys_total"), "8");
  EXPECT_EQ(samples.at("kvstored_lookup_hit_keys_total"), "5");
  EXPECT_EQ(samples.at(R"(kvstored_puts_total{result="stored"})"), "5");
  EXPECT_EQ(samples.at(R"(kvstored_puts_total{result="rejected"})"), "1");
  EXPECT_EQ(samples.at(R"(kvstored_nvme_io_errors_total{op="read"})"), "2");
  EXPECT_EQ(samples.at("kvstored_nvme_restore_seconds"), "0.25");
  // A histogram: cumulative buckets in seconds, then +Inf, the sum, the count.
  const std::string lookup_labels = R"(path="grpc",op="lookup")";
  auto bucket = [&](const char* le) {
    return samples.at("kvstored_request_duration_seconds_bucket{" + lookup_labels + ",le=\"" +
                      le + "\"}");
  };
  EXPECT_EQ(bucket("1e-05"), "2");
  EXPECT_EQ(bucket("0.0001"), "2");
  EXPECT_EQ(bucket("0.001"), "5");
  EXPECT_EQ(bucket("+Inf"), "6");
  EXPECT_EQ(samples.at("kvstored_request_duration_seconds_sum{" + lookup_labels + "}"), "2.5");
  EXPECT_EQ(samples.at("kvstored_request_duration_seconds_count{" + lookup_labels + "}"), "6");
  EXPECT_EQ(samples.at(R"(kvstored_request_bytes_total{path="same_host",op="put"})"), "2097152");
  EXPECT_EQ(samples.count(R"(kvstored_request_bytes_total{path="grpc",op="lookup"})"), 0u);
  // Every (op, reason) pair is there, zeros too.
  EXPECT_EQ(samples.at(R"(kvstored_misses_total{op="lookup",reason="evicted_pressure"})"), "7");
  EXPECT_EQ(samples.at(R"(kvstored_misses_total{op="fetch",reason="integrity"})"), "2");
  EXPECT_EQ(samples.at(R"(kvstored_misses_total{op="lookup",reason="never_stored"})"), "0");
  EXPECT_EQ(samples.at(R"(kvstored_misses_total{op="fetch",reason="deadline"})"), "0");
  EXPECT_EQ(samples.at(R"(kvstored_tenant_blocks{tenant="team-a"})"), "3");
  EXPECT_EQ(samples.at(R"(kvstored_tenant_bytes{tenant="team-a"})"), "196608");

  // Each family is announced once, before its samples, with a type.
  std::istringstream lines(text);
  std::string line, family;
  std::map<std::string, int> types;
  while (std::getline(lines, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);
      ++types[family];
      const std::string type = line.substr(line.rfind(' ') + 1);
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
      EXPECT_EQ(type == "counter", family.size() > 6 &&
                                       family.compare(family.size() - 6, 6, "_total") == 0)
          << line;
    } else if (!line.empty() && line[0] != '#') {
      EXPECT_EQ(line.rfind(family, 0), 0u) << line << " outside its family " << family;
    }
  }
  for (const auto& [name, count] : types) EXPECT_EQ(count, 1) << name;
  EXPECT_GT(types.size(), 30u);
}

}  // namespace
}  // namespace kvcache
