#include "tools/kvctl_cluster.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "membership/etcd_client.h"
#include "common/byte_size.h"
#include "tools/kvctl_format.h"

namespace kvcache {

absl::StatusOr<std::vector<std::string>> ClusterMembers(const std::string& peers,
                                                        const std::string& etcd,
                                                        const std::string& etcd_prefix,
                                                        absl::Duration timeout,
                                                        const ChannelSecurity& etcd_security) {
  if (!peers.empty() && !etcd.empty()) {
    return absl::InvalidArgumentError("give --peers or --etcd, not both");
  }
  std::vector<std::string> members;
  if (!peers.empty()) {
    absl::flat_hash_set<std::string> seen;
    for (absl::string_view p : absl::StrSplit(peers, ',', absl::SkipWhitespace())) {
      if (!seen.insert(std::string(p)).second) {
        return absl::InvalidArgumentError(absl::StrCat("--peers: ", p, " is listed twice"));
      }
      members.emplace_back(p);
    }
    return members;
  }
  absl::StatusOr<std::unique_ptr<EtcdClient>> client = EtcdClient::Create(etcd, timeout, etcd_security);
  if (!client.ok()) return client.status();
  absl::StatusOr<EtcdRange> range = (*client)->RangePrefix(etcd_prefix);
  if (!range.ok()) return range.status();
  for (const EtcdKeyValue& kv : range->kvs) members.push_back(kv.value);
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  if (members.empty()) {
    return absl::NotFoundError(absl::StrCat("no kvstored registered under ", etcd_prefix,
                                            " in etcd at ", etcd, " (start them with --etcd=", etcd,
                                            ")"));
  }
  return members;
}

v1::StatsResponse SumStats(const std::vector<NodeAnswer<v1::StatsResponse>>& nodes) {
  v1::StatsResponse total;
  bool first = true;
  for (const auto& n : nodes) {
    if (!n.response.ok()) continue;
    const v1::StatsResponse& s = *n.response;
    if (first) {
      total.set_version(s.version());
      total.set_page_bytes(s.page_bytes());
      first = false;
    } else if (total.version() != s.version()) {
      total.set_version("(mixed versions)");
    }
    total.set_uptime_seconds(std::max(total.uptime_seconds(), s.uptime_seconds()));
    for (const v1::TierStats& t : s.tiers()) {
      v1::TierStats* sum = nullptr;
      for (v1::TierStats& have : *total.mutable_tiers()) {
        if (have.tier() == t.tier()) sum = &have;
      }
      if (sum == nullptr) {
        sum = total.add_tiers();
        sum->set_tier(t.tier());
      }
      if (!t.enabled()) {
        if (!sum->enabled()) sum->set_detail(t.detail());
        continue;
      }
      if (!sum->enabled()) sum->set_detail("");
      sum->set_enabled(true);
      sum->set_capacity_bytes(sum->capacity_bytes() + t.capacity_bytes());
      sum->set_used_bytes(sum->used_bytes() + t.used_bytes());
      sum->set_blocks(sum->blocks() + t.blocks());
      sum->set_hits(sum->hits() + t.hits());
      sum->set_misses(sum->misses() + t.misses());
      sum->set_bytes_in(sum->bytes_in() + t.bytes_in());
      sum->set_bytes_out(sum->bytes_out() + t.bytes_out());
    }
#define KVCTL_SUM(field) total.set_##field(total.field() + s.field())
    KVCTL_SUM(pinned_bytes);
    KVCTL_SUM(staged_bytes);
    KVCTL_SUM(lookups);
    KVCTL_SUM(lookup_keys);
    KVCTL_SUM(lookup_hit_keys);
    KVCTL_SUM(puts_stored);
    KVCTL_SUM(puts_rejected);
    KVCTL_SUM(fetches);
    KVCTL_SUM(evicted_blocks);
    KVCTL_SUM(spilled_blocks);
    KVCTL_SUM(promoted_blocks);
    KVCTL_SUM(nvme_evicted_blocks);
    KVCTL_SUM(nvme_corrupt_drops);
    KVCTL_SUM(nvme_write_errors);
    KVCTL_SUM(nvme_read_errors);
    KVCTL_SUM(nvme_not_admitted);
    KVCTL_SUM(nvme_restored_blocks);
    KVCTL_SUM(gpu_landed_blocks);
    KVCTL_SUM(gpu_promoted_blocks);
    KVCTL_SUM(gpu_demoted_blocks);
    KVCTL_SUM(gpu_copied_to_host);
    KVCTL_SUM(gpu_not_admitted);
    KVCTL_SUM(gpu_leased_blocks);
#undef KVCTL_SUM
    total.set_nvme_restore_seconds(
        std::max(total.nvme_restore_seconds(), s.nvme_restore_seconds()));
  }
  return total;
}

std::string FormatClusterStats(const std::vector<NodeAnswer<v1::StatsResponse>>& nodes) {
  size_t up = 0;
  for (const auto& n : nodes) up += n.response.ok();
  std::string out = absl::StrFormat("cluster: %d nodes, %d answering\n\n", nodes.size(), up);
  absl::StrAppendFormat(&out, "%-22s %-5s %10s %10s %8s %10s %8s %10s %7s\n", "NODE", "STATE",
                        "HOST USED", "CAPACITY", "BLOCKS", "NVME USED", "ON NVME", "KEYS ASKED",
                        "HIT%");
  for (const auto& n : nodes) {
    if (!n.response.ok()) {
      absl::StrAppendFormat(&out, "%-22s %-5s  %s\n", n.address, "DOWN",
                            n.response.status().message());
      continue;
    }
    const v1::StatsResponse& s = *n.response;
    uint64_t host_used = 0, host_cap = 0, host_blocks = 0, nvme_used = 0, nvme_blocks = 0;
    for (const v1::TierStats& t : s.tiers()) {
      if (t.tier() == v1::TIER_HOST) {
        host_used = t.used_bytes();
        host_cap = t.capacity_bytes();
        host_blocks = t.blocks();
      } else if (t.tier() == v1::TIER_NVME) {
        nvme_used = t.used_bytes();
        nvme_blocks = t.blocks();
      }
    }
    const std::string hit =
        s.lookup_keys() == 0
            ? "-"
            : absl::StrFormat("%.1f%%", 100.0 * s.lookup_hit_keys() / s.lookup_keys());
    absl::StrAppendFormat(&out, "%-22s %-5s %10s %10s %8d %10s %8d %10d %7s\n", n.address, "up",
                          FormatBytes(host_used), FormatBytes(host_cap), host_blocks,
                          FormatBytes(nvme_used), nvme_blocks, s.lookup_keys(), hit);
  }
  absl::StrAppend(&out, "\ntotal of the ", up, " answering nodes:\n", FormatStats(SumStats(nodes)));
  return out;
}

v1::ListResponse MergePrefixes(const std::vector<NodeAnswer<v1::ListResponse>>& nodes,
                               std::vector<int>* holders) {
  v1::ListResponse merged;
  holders->clear();
  absl::flat_hash_map<std::pair<std::string, std::string>, int> row_of;  // (ns, root) -> row
  for (const auto& n : nodes) {
    if (!n.response.ok()) continue;
    for (const v1::PrefixInfo& p : n.response->prefixes()) {
      auto [it, fresh] = row_of.try_emplace({p.namespace_(), p.root_key()}, merged.prefixes_size());
      if (fresh) {
        *merged.add_prefixes() = p;
        holders->push_back(1);
        continue;
      }
      // Another node's copy of this root: one row, the longest chain's
      // shape, hits of all copies, the latest use, every tier.
      v1::PrefixInfo& row = *merged.mutable_prefixes(it->second);
      ++(*holders)[it->second];
      if (p.depth() > row.depth()) {
        row.set_depth(p.depth());
        row.set_blocks(p.blocks());
        row.set_bytes(p.bytes());
        row.set_leaves(p.leaves());
      }
      row.set_hits(row.hits() + p.hits());
      row.set_last_access_unix_micros(
          std::max(row.last_access_unix_micros(), p.last_access_unix_micros()));
      for (int t : p.tiers()) {
        if (std::find(row.tiers().begin(), row.tiers().end(), t) == row.tiers().end()) {
          row.add_tiers(static_cast<v1::Tier>(t));
        }
      }
    }
  }
  // By namespace, then the most recently used first.
  std::vector<int> order(merged.prefixes_size());
  for (int i = 0; i < merged.prefixes_size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    const v1::PrefixInfo& x = merged.prefixes(a);
    const v1::PrefixInfo& y = merged.prefixes(b);
    if (x.namespace_() != y.namespace_()) return x.namespace_() < y.namespace_();
    return x.last_access_unix_micros() > y.last_access_unix_micros();
  });
  v1::ListResponse sorted;
  std::vector<int> sorted_holders;
  for (int i : order) {
    *sorted.add_prefixes() = merged.prefixes(i);
    sorted_holders.push_back((*holders)[i]);
  }
  *holders = std::move(sorted_holders);
  return sorted;
}

}  // namespace kvcache
