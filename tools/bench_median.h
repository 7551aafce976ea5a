// The median kvbench reports for every figure: the middle of the rounds, or
// the mean of the two middle ones for an even count; 0 for none.
#ifndef KVCACHE_TOOLS_BENCH_MEDIAN_H_
#define KVCACHE_TOOLS_BENCH_MEDIAN_H_

#include <algorithm>
#include <vector>

namespace kvcache {

inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t mid = v.size() / 2;
  return v.size() % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_BENCH_MEDIAN_H_
