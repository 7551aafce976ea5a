// kvbench's report of its main run: the text table and the bar chart, both
// from the medians Run collects (keys such as "fetch_samehost_gbps_1").
#ifndef KVCACHE_TOOLS_KVBENCH_REPORT_H_
#define KVCACHE_TOOLS_KVBENCH_REPORT_H_

#include <cstddef>
#include <map>
#include <string>

#include "absl/status/status.h"

namespace kvcache {

// Which groups were measured (kvbench --only), and whether Redis ran.
struct BenchGroups {
  bool samehost = true;
  bool put = true;  // same-host Put by lease, next to memcpy
  bool socket = true;
  bool lookup = true;
  bool redis = true;
};

// Prints the medians as a table: each path next to its references, for 1
// and 4 streams. `prefix_blocks`: blocks per call of the prefix fetches.
void PrintBenchTable(const std::map<std::string, double>& med, const BenchGroups& groups,
                     size_t prefix_blocks);

// The foundation's side-by-side bars: each path next to its references, for
// 1 and 4 streams. Writes kvbench_results.json, kvbench_bars.{dat,gp,png}.
absl::Status WriteBenchBars(const std::map<std::string, double>& med, const std::string& json,
                            const std::string& dir);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVBENCH_REPORT_H_
