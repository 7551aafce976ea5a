#include "tools/kvctl_top.h"

#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/byte_size.h"

namespace kvcache {
namespace {

const v1::TierStats* Host(const v1::StatsResponse& s) {
  for (const v1::TierStats& t : s.tiers()) {
    if (t.tier() == v1::TIER_HOST) return &t;
  }
  return nullptr;
}

// The bucket bound below which fraction q of `counts` fell.
uint64_t Quantile(const std::vector<uint64_t>& counts, const v1::LatencyHistogram& h, double q) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  uint64_t seen = 0;
  for (size_t b = 0; b < counts.size(); ++b) {
    seen += counts[b];
    if (counts[b] > 0 && static_cast<double>(seen) >= q * static_cast<double>(total)) {
      const int bounds = h.bucket_upper_micros_size();
      if (bounds == 0) return 0;
      return h.bucket_upper_micros(b < static_cast<size_t>(bounds) ? static_cast<int>(b) : bounds - 1);
    }
  }
  return 0;
}

std::string Micros(uint64_t us) {
  if (us < 1000) return absl::StrCat(us, "us");
  if (us < 1000000) return absl::StrCat(us / 1000, "ms");
  return absl::StrCat(us / 1000000, "s");
}

// "grpc lookup 200us/1ms" for each path and operation with requests
// between the two answers (histograms matched by path and op).
std::string Latencies(const v1::StatsResponse& before, const v1::StatsResponse& now) {
  std::string out;
  for (const v1::LatencyHistogram& h : now.latencies()) {
    const v1::LatencyHistogram* old = nullptr;
    for (const v1::LatencyHistogram& o : before.latencies()) {
      if (o.path() == h.path() && o.op() == h.op()) old = &o;
    }
    std::vector<uint64_t> counts(h.counts().begin(), h.counts().end());
    if (old != nullptr && old->counts_size() == h.counts_size()) {
      for (size_t b = 0; b < counts.size(); ++b) counts[b] -= old->counts(static_cast<int>(b));
    }
    uint64_t n = 0;
    for (uint64_t c : counts) n += c;
    if (n == 0) continue;
    absl::StrAppend(&out, out.empty() ? "" : "  ", h.path(), " ", h.op(), " ",
                    Micros(Quantile(counts, h, 0.5)), "/", Micros(Quantile(counts, h, 0.99)));
  }
  return out.empty() ? "-" : out;
}

}  // namespace

std::string TopHeader() {
  return absl::StrFormat("%-8s %10s %11s %6s %8s %9s %10s %10s %5s %9s  %s\n", "time",
                         "lookups/s", "keys/s", "hit%", "puts/s", "fetches/s", "in/s", "out/s",
                         "host", "pinned", "latency p50/p99 (path op)");
}

std::string TopRow(const v1::StatsResponse& before, const v1::StatsResponse& now,
                   double seconds, const std::string& clock) {
  if (seconds <= 0) seconds = 1;
  auto rate = [seconds](uint64_t later, uint64_t earlier) {
    return later >= earlier ? static_cast<double>(later - earlier) / seconds : 0.0;
  };
  const uint64_t keys = now.lookup_keys() - before.lookup_keys();
  const uint64_t hits = now.lookup_hit_keys() - before.lookup_hit_keys();
  const v1::TierStats* host_now = Host(now);
  const v1::TierStats* host_before = Host(before);
  uint64_t in = 0, out = 0;
  std::string host_use = "-";
  if (host_now != nullptr && host_before != nullptr) {
    in = static_cast<uint64_t>(rate(host_now->bytes_in(), host_before->bytes_in()));
    out = static_cast<uint64_t>(rate(host_now->bytes_out(), host_before->bytes_out()));
    if (host_now->capacity_bytes() > 0) {
      host_use = absl::StrFormat("%.0f%%", 100.0 * static_cast<double>(host_now->used_bytes()) /
                                               static_cast<double>(host_now->capacity_bytes()));
    }
  }
  return absl::StrFormat(
      "%-8s %10.1f %11.1f %6s %8.1f %9.1f %10s %10s %5s %9s  %s\n", clock,
      rate(now.lookups(), before.lookups()), rate(now.lookup_keys(), before.lookup_keys()),
      keys == 0 ? std::string("-") : absl::StrFormat("%.1f", 100.0 * hits / keys),
      rate(now.puts_stored() + now.puts_rejected(), before.puts_stored() + before.puts_rejected()),
      rate(now.fetches(), before.fetches()), FormatBytes(in), FormatBytes(out), host_use,
      FormatBytes(now.pinned_bytes()), Latencies(before, now));
}

}  // namespace kvcache
