#include "client/client_metrics.h"

#include <string>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

TEST(ClientMetricsTest, MissReasonsFollowTheStatus) {
  EXPECT_EQ(MissOf(absl::OkStatus()), ClientMiss::kNotCached);
  EXPECT_EQ(MissOf(absl::NotFoundError("")), ClientMiss::kNotCached);
  EXPECT_EQ(MissOf(absl::UnavailableError("")), ClientMiss::kNodeDown);
  EXPECT_EQ(MissOf(absl::DeadlineExceededError("")), ClientMiss::kDeadline);
  EXPECT_EQ(MissOf(absl::DataLossError("")), ClientMiss::kError);
  EXPECT_EQ(std::string(ClientMissName(ClientMiss::kNodeDown)), "node_down");
  EXPECT_EQ(std::string(ClientPathName(ClientPath::kSameHost)), "same_host");
  EXPECT_EQ(std::string(ClientOpName(ClientOp::kPut)), "put");
}

TEST(ClientMetricsTest, CountsLookupsAttemptsAndMisses) {
  ClientMetrics metrics;
  metrics.CountLookup(8, 8, absl::OkStatus());  // all hit: no miss
  metrics.CountLookup(8, 3, absl::OkStatus());
  metrics.CountLookup(8, 0, absl::UnavailableError("down"));
  metrics.CountFetchMiss(ClientMiss::kDeadline);
  metrics.Record(ClientPath::kDataPort, ClientOp::kFetch, absl::Microseconds(150), 4, 4096);
  metrics.Record(ClientPath::kDataPort, ClientOp::kFetch, absl::Milliseconds(3), 2, 2048);
  const ClientFigures f = metrics.Take();
  EXPECT_EQ(f.lookup_keys, 24u);
  EXPECT_EQ(f.lookup_hit_keys, 11u);
  EXPECT_EQ(f.lookup_misses[static_cast<size_t>(ClientMiss::kNotCached)], 1u);
  EXPECT_EQ(f.lookup_misses[static_cast<size_t>(ClientMiss::kNodeDown)], 1u);
  EXPECT_EQ(f.fetch_misses[static_cast<size_t>(ClientMiss::kDeadline)], 1u);
  const PathFigures& fetch = f.at(ClientPath::kDataPort, ClientOp::kFetch);
  EXPECT_EQ(fetch.requests, 2u);
  EXPECT_EQ(fetch.blocks, 6u);
  EXPECT_EQ(fetch.bytes, 6144u);
  EXPECT_EQ(fetch.latency.count, 2u);
  EXPECT_EQ(fetch.latency.sum_micros, 3150u);
  EXPECT_EQ(fetch.latency.QuantileMicros(0.99), 5000u);  // 3 ms falls in (2, 5] ms
  EXPECT_EQ(f.at(ClientPath::kGrpc, ClientOp::kFetch).requests, 0u);

  ClientFigures sum = f;
  sum += f;
  EXPECT_EQ(sum.lookup_keys, 48u);
  EXPECT_EQ(sum.at(ClientPath::kDataPort, ClientOp::kFetch).bytes, 12288u);
  EXPECT_EQ(sum.at(ClientPath::kDataPort, ClientOp::kFetch).latency.count, 4u);
}

}  // namespace
}  // namespace kvcache
