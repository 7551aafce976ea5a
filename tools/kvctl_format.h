// Human-readable tables for kvctl's read commands.
#ifndef KVCACHE_TOOLS_KVCTL_FORMAT_H_
#define KVCACHE_TOOLS_KVCTL_FORMAT_H_

#include <string>

#include "kvcache/v1/kvcache.pb.h"

namespace kvcache {

std::string FormatStats(const v1::StatsResponse& stats);
// Prefixes grouped by namespace, one row per chain root.
std::string FormatPrefixes(const v1::ListResponse& list);
std::string FormatBlock(const v1::InspectResponse& block);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVCTL_FORMAT_H_
