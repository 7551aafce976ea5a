// How kvbench measures a rate: run an operation on n threads for a while.
#ifndef KVCACHE_TOOLS_BENCH_RATE_H_
#define KVCACHE_TOOLS_BENCH_RATE_H_

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace kvcache {

// Runs fn(thread index) in a loop on n threads for `duration`; fn returns the
// units it did (bytes, keys), or 0 to stop its thread. Returns units per
// second over the wall time of the whole run.
template <typename Fn>
double Rate(int n, absl::Duration duration, Fn fn) {
  std::atomic<uint64_t> total{0};
  const absl::Time start = absl::Now();
  const absl::Time stop = start + duration;
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) {
    threads.emplace_back([&, t] {
      uint64_t mine = 0;
      while (absl::Now() < stop) {
        const uint64_t done = fn(t);
        if (done == 0) break;
        mine += done;
      }
      total += mine;
    });
  }
  for (auto& th : threads) th.join();
  return total.load() / absl::ToDoubleSeconds(absl::Now() - start);
}

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_BENCH_RATE_H_
