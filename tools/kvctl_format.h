// Human-readable tables for kvctl's read commands.
#ifndef KVCACHE_TOOLS_KVCTL_FORMAT_H_
#define KVCACHE_TOOLS_KVCTL_FORMAT_H_

#include <string>
#include <vector>

#include "kvcache/v1/kvcache.pb.h"

namespace kvcache {

std::string FormatStats(const v1::StatsResponse& stats);
// Prefixes grouped by namespace, one row per chain root. With `holders`
// (one per row: how many cluster nodes hold that root), a NODES column too.
std::string FormatPrefixes(const v1::ListResponse& list, const std::vector<int>& holders = {});
std::string FormatBlock(const v1::InspectResponse& block);
// A row per block of a Why answer: cached (tiers), or the reason and when.
std::string FormatWhy(const std::string& ns, const v1::WhyResponse& why);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVCTL_FORMAT_H_
