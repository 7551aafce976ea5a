#include "kvstore/server/metrics_text.h"

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "kvstore/index/miss_reason.h"

namespace kvcache {
namespace {

const char* TierName(v1::Tier tier) {
  switch (tier) {
    case v1::TIER_GPU:
      return "gpu";
    case v1::TIER_HOST:
      return "host";
    case v1::TIER_NVME:
      return "nvme";
    default:
      return "unknown";
  }
}

// A label value, escaped as the format asks (backslash, quote, newline).
std::string LabelValue(const std::string& v) {
  return absl::StrReplaceAll(v, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
}

// The shortest of 15 or 17 digits that reads back as `v` (0.1, not
// 0.10000000000000001).
std::string Number(double v) {
  std::string s = absl::StrFormat("%.15g", v);
  if (std::strtod(s.c_str(), nullptr) != v) s = absl::StrFormat("%.17g", v);
  return s;
}

class Exposition {
 public:
  // Starts a family: its HELP and TYPE lines.
  Exposition& Family(const std::string& name, const char* type, const char* help) {
    name_ = name;
    absl::StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
    return *this;
  }
  // A sample of the current family; `labels` as `key="value",...` or empty.
  Exposition& Sample(const std::string& labels, double value) { return Sample("", labels, value); }
  // The same, its name the family's with `suffix` (a histogram's _bucket).
  Exposition& Sample(const char* suffix, const std::string& labels, double value) {
    absl::StrAppend(&out_, name_, suffix, labels.empty() ? "" : absl::StrCat("{", labels, "}"),
                    " ", Number(value), "\n");
    return *this;
  }
  Exposition& Counter(const std::string& name, const char* help, uint64_t value) {
    return Family(name, "counter", help).Sample("", static_cast<double>(value));
  }
  Exposition& Gauge(const std::string& name, const char* help, double value) {
    return Family(name, "gauge", help).Sample("", value);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
  std::string name_;
};

}  // namespace

std::string RenderMetrics(const v1::StatsResponse& s) {
  Exposition e;
  e.Family("kvstored_build_info", "gauge", "Always 1; the daemon's version as a label.")
      .Sample(absl::StrCat("version=\"", LabelValue(s.version()), "\""), 1);
  e.Gauge("kvstored_uptime_seconds", "Seconds since the daemon started.",
          static_cast<double>(s.uptime_seconds()));

  struct TierFigure {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const v1::TierStats&);
  };
  static const TierFigure kTierFigures[] = {
      {"kvstored_tier_enabled", "gauge", "1 while the tier serves; 0 when off or disabled.",
       [](const v1::TierStats& t) { return t.enabled() ? 1.0 : 0.0; }},
      {"kvstored_tier_capacity_bytes", "gauge", "Bytes the tier may hold.",
       [](const v1::TierStats& t) { return static_cast<double>(t.capacity_bytes()); }},
      {"kvstored_tier_used_bytes", "gauge", "Bytes the tier holds now.",
       [](const v1::TierStats& t) { return static_cast<double>(t.used_bytes()); }},
      {"kvstored_tier_blocks", "gauge", "Blocks with a copy in the tier.",
       [](const v1::TierStats& t) { return static_cast<double>(t.blocks()); }},
      {"kvstored_tier_hits_total", "counter",
       "Host: looked-up keys that hit. NVMe: blocks read back. GPU: blocks served from GPU pages.",
       [](const v1::TierStats& t) { return static_cast<double>(t.hits()); }},
      {"kvstored_tier_misses_total", "counter", "Host: looked-up keys that missed.",
       [](const v1::TierStats& t) { return static_cast<double>(t.misses()); }},
      {"kvstored_tier_bytes_in_total", "counter",
       "Host: payload bytes of puts received. NVMe: bytes written.",
       [](const v1::TierStats& t) { return static_cast<double>(t.bytes_in()); }},
      {"kvstored_tier_bytes_out_total", "counter",
       "Host: payload bytes served by fetches. NVMe: bytes read back.",
       [](const v1::TierStats& t) { return static_cast<double>(t.bytes_out()); }},
  };
  for (const TierFigure& f : kTierFigures) {
    e.Family(f.name, f.type, f.help);
    for (const v1::TierStats& t : s.tiers()) {
      e.Sample(absl::StrCat("tier=\"", TierName(t.tier()), "\""), f.value(t));
    }
  }

  e.Gauge("kvstored_pinned_bytes", "Bytes of blocks held by fetches in flight and leases.",
          static_cast<double>(s.pinned_bytes()));
  e.Gauge("kvstored_staged_bytes", "Bytes held by puts that have not finished.",
          static_cast<double>(s.staged_bytes()));
  e.Gauge("kvstored_leases_held", "Same-host leases held now (fetch, GPU and put).",
          static_cast<double>(s.leases_held()));
  e.Gauge("kvstored_page_bytes", "Size of a host arena page.", static_cast<double>(s.page_bytes()));
  e.Counter("kvstored_lookups_total", "Lookup calls answered by the daemon.", s.lookups());
  e.Counter("kvstored_lookup_keys_total", "Keys asked for by those lookups.", s.lookup_keys());
  e.Counter("kvstored_lookup_hit_keys_total", "Keys those lookups found cached.",
            s.lookup_hit_keys());
  e.Family("kvstored_puts_total", "counter", "Blocks put, by result.")
      .Sample("result=\"stored\"", static_cast<double>(s.puts_stored()))
      .Sample("result=\"rejected\"", static_cast<double>(s.puts_rejected()));
  e.Counter("kvstored_fetches_total", "Fetch calls served (all paths).", s.fetches());
  e.Counter("kvstored_direct_reads_total",
            "Blocks same-host workers copied through the block directory, as reported.",
            s.direct_reads());
  e.Counter("kvstored_direct_read_bytes_total", "Bytes of those blocks, as reported.",
            s.direct_read_bytes());
  // Every (op, reason) pair, zeros included, so rates and ratios need no
  // absent() in queries.
  e.Family("kvstored_misses_total", "counter",
           "Misses by reason: lookups that stopped before the end of their chain (op=lookup) "
           "and fetches that did (op=fetch), by the reason of the block they stopped at.");
  for (const char* op : {"lookup", "fetch"}) {
    for (size_t r = 0; r < kMissReasons; ++r) {
      const char* reason = MissReasonName(static_cast<MissReason>(r));
      uint64_t count = 0;
      for (const v1::MissCount& m : s.misses()) {
        if (m.op() == op && m.reason() == reason) count += m.count();
      }
      e.Sample(absl::StrCat("op=\"", op, "\",reason=\"", reason, "\""),
               static_cast<double>(count));
    }
  }
  e.Family("kvstored_tenant_blocks", "gauge", "Blocks a tenant's namespaces hold, all tiers.");
  for (const v1::TenantUsage& t : s.tenants()) {
    e.Sample(absl::StrCat("tenant=\"", LabelValue(t.tenant()), "\""),
             static_cast<double>(t.blocks()));
  }
  e.Family("kvstored_tenant_bytes", "gauge", "Bytes a tenant's namespaces hold, all tiers.");
  for (const v1::TenantUsage& t : s.tenants()) {
    e.Sample(absl::StrCat("tenant=\"", LabelValue(t.tenant()), "\""),
             static_cast<double>(t.bytes()));
  }
  e.Counter("kvstored_evicted_blocks_total", "Blocks dropped from the cache to make room.",
            s.evicted_blocks());
  e.Counter("kvstored_spilled_blocks_total", "Host copies written to NVMe and freed.",
            s.spilled_blocks());
  e.Counter("kvstored_promoted_blocks_total", "NVMe-only blocks read back into host pages.",
            s.promoted_blocks());
  e.Counter("kvstored_nvme_evicted_blocks_total", "Blocks dropped to make room on NVMe.",
            s.nvme_evicted_blocks());
  e.Counter("kvstored_nvme_corrupt_drops_total",
            "NVMe records that failed verification (each a miss, the block dropped).",
            s.nvme_corrupt_drops());
  e.Family("kvstored_nvme_io_errors_total", "counter", "NVMe I/O errors, by operation.")
      .Sample("op=\"read\"", static_cast<double>(s.nvme_read_errors()))
      .Sample("op=\"write\"", static_cast<double>(s.nvme_write_errors()));
  e.Counter("kvstored_nvme_not_admitted_total",
            "Spills refused by NVMe admission or the write budget.", s.nvme_not_admitted());
  e.Gauge("kvstored_nvme_restored_blocks", "Blocks indexed from NVMe when the daemon started.",
          static_cast<double>(s.nvme_restored_blocks()));
  e.Gauge("kvstored_nvme_restore_seconds", "How long indexing the NVMe blocks at start took.",
          s.nvme_restore_seconds());
  e.Counter("kvstored_gpu_landed_blocks_total", "Puts copied into GPU pages.",
            s.gpu_landed_blocks());
  e.Counter("kvstored_gpu_promoted_blocks_total", "Host blocks copied up to the GPU.",
            s.gpu_promoted_blocks());
  e.Counter("kvstored_gpu_demoted_blocks_total",
            "GPU-only blocks copied down to host pages to make room.", s.gpu_demoted_blocks());
  e.Counter("kvstored_gpu_leased_blocks_total",
            "Blocks same-host workers copied out of GPU pages under a lease.",
            s.gpu_leased_blocks());
  e.Counter("kvstored_gpu_not_admitted_total", "GPU offers refused for want of pages.",
            s.gpu_not_admitted());

  e.Family("kvstored_request_duration_seconds", "histogram",
           "Time the daemon took over a request, start to end as it saw it (a streamed fetch or "
           "put: the whole stream; same-host: the lease, or the put's commit).");
  for (const v1::LatencyHistogram& h : s.latencies()) {
    const std::string labels =
        absl::StrCat("path=\"", LabelValue(h.path()), "\",op=\"", LabelValue(h.op()), "\"");
    uint64_t cumulative = 0;
    for (int b = 0; b < h.counts_size(); ++b) {
      cumulative += h.counts(b);
      const std::string le = b < h.bucket_upper_micros_size()
                                 ? Number(static_cast<double>(h.bucket_upper_micros(b)) / 1e6)
                                 : std::string("+Inf");
      e.Sample("_bucket", absl::StrCat(labels, ",le=\"", le, "\""), static_cast<double>(cumulative));
    }
    e.Sample("_sum", labels, static_cast<double>(h.sum_micros()) / 1e6);
    e.Sample("_count", labels, static_cast<double>(h.count()));
  }
  e.Family("kvstored_request_bytes_total", "counter",
           "Payload bytes moved by requests, by path and operation (fetch: sent; put: received).");
  for (const v1::LatencyHistogram& h : s.latencies()) {
    if (h.op() == "lookup") continue;  // moves no payload
    e.Sample(absl::StrCat("path=\"", LabelValue(h.path()), "\",op=\"", LabelValue(h.op()), "\""),
             static_cast<double>(h.bytes()));
  }
  return e.Take();
}

}  // namespace kvcache
