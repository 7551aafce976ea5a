// The daemon's figures in Prometheus' text exposition format (version
// 0.0.4), served at /metrics (kvstore/server/metrics_server.h). Rendered from the
// same StatsResponse the Stats RPC returns, so `kvctl stats` and a scrape
// never disagree.
//
// Names carry their unit (`_bytes`, `_seconds`) and counters end in
// `_total`; labels come from small fixed sets (tier, op, result), never
// from keys, namespaces or clients.
//
// Thread safety: a plain function.
#ifndef KVCACHE_KVSTORE_SERVER_METRICS_TEXT_H_
#define KVCACHE_KVSTORE_SERVER_METRICS_TEXT_H_

#include <string>

#include "kvcache/v1/kvcache.pb.h"

namespace kvcache {

// The exposition of `stats`, every family with its HELP and TYPE lines.
std::string RenderMetrics(const v1::StatsResponse& stats);

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_METRICS_TEXT_H_
