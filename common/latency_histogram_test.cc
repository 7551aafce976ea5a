#include "common/latency_histogram.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

TEST(LatencyHistogramTest, CountsEachLatencyInItsBucket) {
  LatencyHistogram h;
  h.Record(absl::Microseconds(3));     // <= 10 us
  h.Record(absl::Microseconds(10));    // <= 10 us: bounds are inclusive
  h.Record(absl::Microseconds(11));    // <= 20 us
  h.Record(absl::Milliseconds(1));     // <= 1000 us
  h.Record(absl::Seconds(60));         // past the last bound
  h.Record(-absl::Microseconds(5));    // a clock step: counted as 0
  const LatencyHistogram::Snapshot s = h.Take();
  EXPECT_EQ(s.count, 6u);
  EXPECT_EQ(s.sum_micros, 3u + 10 + 11 + 1000 + 60000000);
  EXPECT_EQ(s.counts[0], 3u);
  EXPECT_EQ(s.counts[1], 1u);
  EXPECT_EQ(s.counts[6], 1u);
  EXPECT_EQ(s.counts[LatencyHistogram::kBuckets - 1], 1u);
}

TEST(LatencyHistogramTest, QuantilesAreBucketBounds) {
  LatencyHistogram h;
  for (int i = 0; i < 90; ++i) h.Record(absl::Microseconds(150));  // the 200 us bucket
  for (int i = 0; i < 10; ++i) h.Record(absl::Milliseconds(40));   // the 50 ms bucket
  const LatencyHistogram::Snapshot s = h.Take();
  EXPECT_EQ(s.QuantileMicros(0.5), 200u);
  EXPECT_EQ(s.QuantileMicros(0.9), 200u);
  EXPECT_EQ(s.QuantileMicros(0.99), 50000u);
  EXPECT_EQ(LatencyHistogram::Snapshot().QuantileMicros(0.5), 0u);

  const LatencyHistogram::Snapshot before = h.Take();
  h.Record(absl::Seconds(20));
  const LatencyHistogram::Snapshot delta = h.Take().Minus(before);
  EXPECT_EQ(delta.count, 1u);
  EXPECT_EQ(delta.QuantileMicros(0.5), LatencyHistogram::kBoundsMicros.back());
}

TEST(LatencyHistogramTest, RecordsFromManyThreadsLoseNothing) {
  LatencyHistogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h, t] {
      for (int i = 0; i < 10000; ++i) h.Record(absl::Microseconds(t * 100 + i % 7));
    });
  }
  for (std::thread& t : threads) t.join();
  const LatencyHistogram::Snapshot s = h.Take();
  uint64_t in_buckets = 0;
  for (uint64_t c : s.counts) in_buckets += c;
  EXPECT_EQ(s.count, 40000u);
  EXPECT_EQ(in_buckets, 40000u);
}

}  // namespace
}  // namespace kvcache
