// kvbench metrics: what the daemon's request metrics cost. Two daemons run
// side by side, one with everything on (latency histograms, misses by
// reason, the drop record, /metrics scraped every second as Prometheus
// would) and one with all of it off (--request_metrics=false
// --drop_record_entries=0 --metrics_listen=off); each round measures both,
// in alternating order, and the report gives each figure's median on / off.
#ifndef KVCACHE_TOOLS_KVBENCH_METRICS_H_
#define KVCACHE_TOOLS_KVBENCH_METRICS_H_

#include <string>

namespace kvcache {

// Runs `runs` rounds of `seconds` per figure; prints a table (or JSON).
// 0 on success.
int RunMetricsCostBench(const std::string& kvstored, int runs, double seconds, bool json);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVBENCH_METRICS_H_
