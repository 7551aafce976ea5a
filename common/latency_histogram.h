// A latency histogram cheap enough for every request: fixed buckets on a
// 1-2-5 scale from 10 us to 10 s, each a relaxed atomic counter, plus the
// count and the sum. Recording takes no lock and allocates nothing; a
// snapshot is a copy of the counters (consistent enough for monitoring:
// each counter is exact, they are not read at one instant).
//
// Thread safety: Record and Snapshot may be called from any thread.
#ifndef KVCACHE_COMMON_LATENCY_HISTOGRAM_H_
#define KVCACHE_COMMON_LATENCY_HISTOGRAM_H_

#include <array>
#include <atomic>
#include <cstdint>

#include "absl/time/time.h"

namespace kvcache {

class LatencyHistogram {
 public:
  // Upper bounds of the buckets, in microseconds; a last bucket (+Inf)
  // takes what is slower than the last bound.
  static constexpr std::array<uint64_t, 19> kBoundsMicros = {
      10,     20,     50,      100,     200,     500,       1000,      2000,     5000,   10000,
      20000,  50000,  100000,  200000,  500000,  1000000,   2000000,   5000000,  10000000};
  static constexpr size_t kBuckets = kBoundsMicros.size() + 1;

  struct Snapshot {
    std::array<uint64_t, kBuckets> counts{};  // per bucket, not cumulative
    uint64_t count = 0;
    uint64_t sum_micros = 0;

    // The latency below which `q` (0..1) of the requests fell, as the
    // upper bound of its bucket (the last finite bound for the +Inf one);
    // 0 with no requests.
    uint64_t QuantileMicros(double q) const;
    // This snapshot less an earlier one of the same histogram.
    Snapshot Minus(const Snapshot& earlier) const;
  };

  void Record(absl::Duration latency) {
    const int64_t us = absl::ToInt64Microseconds(latency);
    const uint64_t micros = us < 0 ? 0 : static_cast<uint64_t>(us);
    size_t b = 0;
    while (b < kBoundsMicros.size() && micros > kBoundsMicros[b]) ++b;
    counts_[b].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    sum_micros_.fetch_add(micros, std::memory_order_relaxed);
  }

  Snapshot Take() const {
    Snapshot s;
    for (size_t b = 0; b < kBuckets; ++b) s.counts[b] = counts_[b].load(std::memory_order_relaxed);
    s.count = count_.load(std::memory_order_relaxed);
    s.sum_micros = sum_micros_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};
};

inline uint64_t LatencyHistogram::Snapshot::QuantileMicros(double q) const {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0) return 0;
  const double rank = q * static_cast<double>(total);
  uint64_t seen = 0;
  for (size_t b = 0; b < kBuckets; ++b) {
    seen += counts[b];
    if (static_cast<double>(seen) >= rank && counts[b] > 0) {
      return b < kBoundsMicros.size() ? kBoundsMicros[b] : kBoundsMicros.back();
    }
  }
  return kBoundsMicros.back();
}

inline LatencyHistogram::Snapshot LatencyHistogram::Snapshot::Minus(
    const Snapshot& earlier) const {
  Snapshot d;
  for (size_t b = 0; b < kBuckets; ++b) d.counts[b] = counts[b] - earlier.counts[b];
  d.count = count - earlier.count;
  d.sum_micros = sum_micros - earlier.sum_micros;
  return d;
}

}  // namespace kvcache

#endif  // KVCACHE_COMMON_LATENCY_HISTOGRAM_H_
