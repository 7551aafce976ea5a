#include "tools/kvctl_format.h"

#include <algorithm>
#include <tuple>


#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/byte_size.h"

namespace kvcache {
namespace {

// The bucket bound below which fraction `q` of h's requests fell.
uint64_t Quantile(const v1::LatencyHistogram& h, double q) {
  const double rank = q * static_cast<double>(h.count());
  uint64_t seen = 0;
  for (int b = 0; b < h.counts_size(); ++b) {
    seen += h.counts(b);
    if (h.counts(b) > 0 && static_cast<double>(seen) >= rank) {
      return b < h.bucket_upper_micros_size() ? h.bucket_upper_micros(b)
             : h.bucket_upper_micros_size() > 0 ? h.bucket_upper_micros(h.bucket_upper_micros_size() - 1)
                                                 : 0;
    }
  }
  return 0;
}

std::string Micros(uint64_t us) {
  if (us < 1000) return absl::StrCat(us, " us");
  if (us < 1000000) return absl::StrFormat("%.3g ms", us / 1e3);
  return absl::StrFormat("%.3g s", us / 1e6);
}


std::string TierName(int tier) {
  switch (tier) {
    case v1::TIER_GPU: return "gpu";
    case v1::TIER_HOST: return "host";
    case v1::TIER_NVME: return "nvme";
    default: return "?";
  }
}

std::string Ago(int64_t unix_micros) {
  if (unix_micros == 0) return "never";
  const absl::Duration d = absl::Now() - absl::FromUnixMicros(unix_micros);
  if (d < absl::Seconds(1)) return "just now";
  if (d < absl::Minutes(2)) return absl::StrCat(absl::ToInt64Seconds(d), "s ago");
  if (d < absl::Hours(2)) return absl::StrCat(absl::ToInt64Minutes(d), "m ago");
  return absl::StrCat(absl::ToInt64Hours(d), "h ago");
}

std::string Percent(uint64_t part, uint64_t whole) {
  return whole == 0 ? "-" : absl::StrFormat("%.1f%%", 100.0 * part / whole);
}

}  // namespace

std::string FormatStats(const v1::StatsResponse& s) {
  std::string out = absl::StrFormat("kvstored %s, up %ds\n\n", s.version(), s.uptime_seconds());
  absl::StrAppendFormat(&out, "%-5s %-4s %10s %10s %6s %8s %10s %10s %10s %10s  %s\n", "TIER",
                        "ON", "CAPACITY", "USED", "USE%", "BLOCKS", "HITS", "MISSES", "IN", "OUT",
                        "DETAIL");
  for (const v1::TierStats& t : s.tiers()) {
    if (!t.enabled()) {
      absl::StrAppendFormat(&out, "%-5s %-4s %10s %10s %6s %8s %10s %10s %10s %10s  %s\n",
                            TierName(t.tier()), "off", "-", "-", "-", "-", "-", "-", "-", "-",
                            t.detail());
      continue;
    }
    absl::StrAppendFormat(&out, "%-5s %-4s %10s %10s %6s %8d %10d %10d %10s %10s  %s\n",
                          TierName(t.tier()), "on", FormatBytes(t.capacity_bytes()),
                          FormatBytes(t.used_bytes()), Percent(t.used_bytes(), t.capacity_bytes()),
                          t.blocks(), t.hits(), t.misses(), FormatBytes(t.bytes_in()),
                          FormatBytes(t.bytes_out()), t.detail());
  }
  absl::StrAppendFormat(&out,
                        "\nlookups %d (%d keys, %s hit)   puts stored %d, rejected %d   "
                        "fetches %d   evicted %d\npinned by readers %s   staged by puts %s   "
                        "same-host leases held %d\n",
                        s.lookups(), s.lookup_keys(), Percent(s.lookup_hit_keys(), s.lookup_keys()),
                        s.puts_stored(), s.puts_rejected(), s.fetches(), s.evicted_blocks(),
                        FormatBytes(s.pinned_bytes()), FormatBytes(s.staged_bytes()),
                        s.leases_held());
  if (!s.cluster().empty()) absl::StrAppend(&out, "cluster: ", s.cluster(), "\n");
  if (!s.repair().empty()) absl::StrAppend(&out, "repair:  ", s.repair(), "\n");
  if (!s.metrics_address().empty()) {
    absl::StrAppend(&out, "metrics: http://", s.metrics_address(), "/metrics\n");
  }
  // Latency since start, per path and operation that saw requests.
  bool heading = false;
  for (const v1::LatencyHistogram& h : s.latencies()) {
    if (h.count() == 0) continue;
    if (!heading) {
      absl::StrAppendFormat(&out, "latency since start (bucket bounds):\n");
      heading = true;
    }
    absl::StrAppendFormat(&out, "  %-9s %-6s %10d requests   p50 <= %s   p99 <= %s   mean %s\n",
                          h.path(), h.op(), h.count(), Micros(Quantile(h, 0.5)),
                          Micros(Quantile(h, 0.99)), Micros(h.sum_micros() / h.count()));
  }
  // Misses by reason, per operation, largest first.
  for (const char* op : {"lookup", "fetch"}) {
    std::vector<const v1::MissCount*> rows;
    for (const v1::MissCount& m : s.misses()) {
      if (m.op() == op) rows.push_back(&m);
    }
    if (rows.empty()) continue;
    std::sort(rows.begin(), rows.end(),
              [](const v1::MissCount* a, const v1::MissCount* b) { return a->count() > b->count(); });
    std::vector<std::string> parts;
    for (const v1::MissCount* m : rows) parts.push_back(absl::StrCat(m->reason(), " ", m->count()));
    absl::StrAppendFormat(&out, "%s misses by reason: %s\n", op, absl::StrJoin(parts, ", "));
  }
  for (const v1::TenantUsage& t : s.tenants()) {
    absl::StrAppendFormat(&out, "tenant %s: %d blocks, %s in %d namespaces%s\n", t.tenant(),
                          t.blocks(), FormatBytes(t.bytes()), t.namespaces(),
                          t.quota_bytes() == 0
                              ? std::string()
                              : absl::StrCat(" (quota ", FormatBytes(t.quota_bytes()), ")"));
    // Per tier: what it holds there, and its bound where it has one.
    std::vector<std::string> tiers;
    for (const auto& [name, bytes, quota] :
         {std::tuple{"host", t.host_bytes(), t.host_quota_bytes()},
          {"nvme", t.nvme_bytes(), t.nvme_quota_bytes()},
          {"gpu", t.gpu_bytes(), t.gpu_quota_bytes()}}) {
      if (bytes == 0 && quota == 0) continue;
      tiers.push_back(absl::StrCat(name, " ", FormatBytes(bytes),
                                   quota == 0 ? "" : absl::StrCat(" of ", FormatBytes(quota))));
    }
    if (!tiers.empty()) absl::StrAppend(&out, "  by tier: ", absl::StrJoin(tiers, ", "), "\n");
  }
  if (!s.block_directory().empty()) {
    absl::StrAppendFormat(&out, "same-host direct reads %d   block directory: %s\n",
                          s.direct_reads(), s.block_directory());
  }
  for (const v1::TierStats& t : s.tiers()) {
    if (t.tier() != v1::TIER_GPU || t.capacity_bytes() == 0) continue;
    absl::StrAppendFormat(&out,
                          "gpu:  landed %d puts, promoted %d, demoted %d to host, copied %d "
                          "down for reads, leased %d to same-host workers, not admitted %d\n",
                          s.gpu_landed_blocks(), s.gpu_promoted_blocks(), s.gpu_demoted_blocks(),
                          s.gpu_copied_to_host(), s.gpu_leased_blocks(), s.gpu_not_admitted());
  }
  for (const v1::TierStats& t : s.tiers()) {
    if (t.tier() != v1::TIER_NVME || t.capacity_bytes() == 0) continue;
    absl::StrAppendFormat(&out,
                          "nvme: spilled %d, promoted %d, dropped for room %d, restored %d at "
                          "start (%.2fs)\n      corrupt reads %d, write errors %d, read errors "
                          "%d, not admitted %d\n",
                          s.spilled_blocks(), s.promoted_blocks(), s.nvme_evicted_blocks(),
                          s.nvme_restored_blocks(), s.nvme_restore_seconds(),
                          s.nvme_corrupt_drops(), s.nvme_write_errors(), s.nvme_read_errors(),
                          s.nvme_not_admitted());
  }
  return out;
}

std::string FormatWhy(const std::string& ns, const v1::WhyResponse& why) {
  std::string out = absl::StrFormat(
      "namespace %s   (drop record: the last %d drops remembered, room for %d)\n%-4s %-64s  %s\n",
      absl::CHexEscape(ns), why.drops_recorded(), why.drop_record_capacity(), "#", "KEY",
      "CACHED, OR WHY NOT");
  for (int i = 0; i < why.blocks_size(); ++i) {
    const v1::BlockWhy& b = why.blocks(i);
    std::string status;
    if (b.cached()) {
      std::vector<std::string> tiers;
      for (int t : b.tiers()) tiers.push_back(TierName(t));
      status = absl::StrCat("cached (", absl::StrJoin(tiers, ", "), ")");
    } else if (b.reason() == "wrong_namespace") {
      status = absl::StrCat("wrong_namespace: cached in namespace \"",
                            absl::CHexEscape(b.other_namespace()), "\"");
    } else {
      status = b.reason();
      if (b.unix_micros() != 0) {
        absl::StrAppend(&status, " at ",
                        absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMicros(b.unix_micros()),
                                         absl::LocalTimeZone()),
                        " (", Ago(b.unix_micros()), ")");
      }
    }
    absl::StrAppendFormat(&out, "%-4d %-64s  %s\n", i,
                          absl::BytesToHexString(b.key()), status);
  }
  return out;
}

std::string FormatPrefixes(const v1::ListResponse& list, const std::vector<int>& holders) {
  if (list.prefixes_size() == 0) return "no cached prefixes\n";
  std::string out;
  std::string current_ns;
  uint64_t blocks = 0, bytes = 0;
  for (int row = 0; row < list.prefixes_size(); ++row) {
    const v1::PrefixInfo& p = list.prefixes(row);
    if (p.namespace_() != current_ns || out.empty()) {
      current_ns = p.namespace_();
      absl::StrAppendFormat(&out, "%s\n  %-18s %6s %8s %7s %10s %-6s %7s%s  %s\n", current_ns,
                            "ROOT", "DEPTH", "BRANCHES", "BLOCKS", "SIZE", "TIERS", "HITS",
                            holders.empty() ? "" : "  NODES", "LAST USED");
    }
    std::vector<std::string> tiers;
    for (int t : p.tiers()) tiers.push_back(TierName(t));
    const std::string root = absl::BytesToHexString(p.root_key());
    const std::string nodes =
        holders.empty()
            ? ""
            : absl::StrFormat("  %5d",
                              static_cast<size_t>(row) < holders.size() ? holders[row] : 0);
    absl::StrAppendFormat(&out, "  %-18s %6d %8d %7d %10s %-6s %7d%s  %s\n",
                          root.size() > 16 ? root.substr(0, 16) + ".." : root, p.depth(),
                          p.leaves(), p.blocks(), FormatBytes(p.bytes()), absl::StrJoin(tiers, ","),
                          p.hits(), nodes, Ago(p.last_access_unix_micros()));
    blocks += p.blocks();
    bytes += p.bytes();
  }
  absl::StrAppendFormat(&out, "%d prefixes, %d blocks, %s\n", list.prefixes_size(), blocks,
                        FormatBytes(bytes));
  return out;
}

std::string FormatBlock(const v1::InspectResponse& b) {
  std::vector<std::string> tiers;
  for (int t : b.tiers()) tiers.push_back(TierName(t));
  if (tiers.empty()) tiers.push_back(TierName(b.tier()));
  auto hex = [](const std::string& s) {
    return s.empty() ? std::string("(none: a root block)") : absl::BytesToHexString(s);
  };
  return absl::StrFormat(
      "namespace  %s\nkey        %s\nparent     %s\nroot       %s\ndepth      %d\n"
      "size       %s (%d bytes)\nchecksum   %016x (XXH3-64)\ntier       %s\nchildren   %d\n"
      "hits       %d\nreaders    %d\ncreated    %s\nlast used  %s\n",
      b.namespace_(), absl::BytesToHexString(b.key()), hex(b.parent_key()),
      absl::BytesToHexString(b.root_key()), b.depth(), FormatBytes(b.size()), b.size(),
      b.checksum(), absl::StrJoin(tiers, ", "), b.children(), b.hits(), b.readers(),
      Ago(b.created_unix_micros()), Ago(b.last_access_unix_micros()));
}

}  // namespace kvcache
