// `kvctl top`: a live view of one daemon, one row per interval (like
// `redis-cli --stat`), made of the difference between two Stats answers:
// request and key rates, the lookup hit ratio, bytes in and out, host tier
// use and pins, and the latency (p50/p99 bucket bounds) of each path and
// operation that saw requests in the interval.
//
// Thread safety: plain functions.
#ifndef KVCACHE_TOOLS_KVCTL_TOP_H_
#define KVCACHE_TOOLS_KVCTL_TOP_H_

#include <string>

#include "kvcache/v1/kvcache.pb.h"

namespace kvcache {

// The column titles, ending in a newline.
std::string TopHeader();

// One row: what happened between `before` and `now`, `seconds` apart, at
// wall-clock time `clock` ("14:05:01"), ending in a newline.
std::string TopRow(const v1::StatsResponse& before, const v1::StatsResponse& now,
                   double seconds, const std::string& clock);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVCTL_TOP_H_
