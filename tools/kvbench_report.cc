#include "tools/kvbench_report.h"

#include <sys/stat.h>

#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/gnuplot.h"

namespace kvcache {
namespace {

// A median, or 0 for one that was not measured.
double At(const std::map<std::string, double>& med, const std::string& key) {
  auto it = med.find(key);
  return it == med.end() ? 0 : it->second;
}

}  // namespace

void PrintBenchTable(const std::map<std::string, double>& med, const BenchGroups& groups,
                     size_t prefix_blocks) {
  std::cout << absl::StrFormat("%-28s %12s %12s\n", "", "1 stream", "4 streams");
  auto row = [&](const std::string& label, const std::string& key, const char* unit) {
    std::cout << absl::StrFormat("%-28s %9.2f %s %9.2f %s\n", label, At(med, key + "_1"), unit,
                                 At(med, key + "_4"), unit);
  };
  auto ratio = [&](const std::string& label, const std::string& key) {
    std::cout << absl::StrFormat("%-28s %9.2fx      %9.2fx\n", label, At(med, key + "_1"),
                                 At(med, key + "_4"));
  };
  if (groups.samehost) {
    std::cout << "same host\n";
    std::cout << absl::StrFormat(
        "  (direct: no round trip; %.1f%% of same-host fetched blocks came that way)\n",
        100 * At(med, "samehost_direct_share"));
    std::cout << "  1 block per call\n";
    row("    Fetch, direct", "fetch_samehost_gbps", "GB/s");
    row("    memcpy (reference)", "memcpy_for_samehost_gbps", "GB/s");
    ratio("    Fetch / memcpy", "fetch_samehost_vs_memcpy");
    row("    Fetch by lease", "fetch_samehost_lease_gbps", "GB/s");
    ratio("    Fetch / memcpy", "fetch_samehost_lease_vs_memcpy");
    std::cout << absl::StrFormat("  %d-block prefix per call\n", prefix_blocks);
    row("    Fetch, direct", "fetch_samehost_prefix_gbps", "GB/s");
    row("    memcpy (reference)", "memcpy_for_samehost_prefix_gbps", "GB/s");
    ratio("    Fetch / memcpy", "fetch_samehost_prefix_vs_memcpy");
    row("    Fetch by lease", "fetch_samehost_lease_prefix_gbps", "GB/s");
    ratio("    Fetch / memcpy", "fetch_samehost_lease_prefix_vs_memcpy");
    std::cout << "  1 block per call, re-hashed in the client (verify_local_fetches)\n";
    row("    Fetch by lease", "fetch_samehost_rehashed_gbps", "GB/s");
    ratio("    Fetch / memcpy", "fetch_samehost_rehashed_vs_memcpy");
  }
  if (groups.put) {
    if (!groups.samehost) std::cout << "same host\n";
    for (const auto& [from, key] : {std::pair{"the worker's memory", ""},
                                     std::pair{"a put buffer (no copy in the worker)", "_buffer"}}) {
      std::cout << "  Put from " << from << ", 1 block per call\n";
      row("    Put", absl::StrCat("put_samehost", key, "_gbps"), "GB/s");
      row("    memcpy (reference)", absl::StrCat("memcpy_for_put", key, "_gbps"), "GB/s");
      ratio("    Put / memcpy", absl::StrCat("put_samehost", key, "_vs_memcpy"));
      std::cout << absl::StrFormat("  Put from %s, a %d-block chain per call\n", from,
                                   prefix_blocks);
      row("    Put", absl::StrCat("put_samehost", key, "_chain_gbps"), "GB/s");
      row("    memcpy (reference)", absl::StrCat("memcpy_for_put", key, "_chain_gbps"), "GB/s");
      ratio("    Put / memcpy", absl::StrCat("put_samehost", key, "_chain_vs_memcpy"));
    }
  }
  if (groups.socket) {
    std::cout << "over loopback TCP\n";
    row("  Fetch, data port", "fetch_dataport_gbps", "GB/s");
    row("  Fetch, gRPC only", "fetch_grpc_gbps", "GB/s");
    row("  Put, data port", "put_dataport_gbps", "GB/s");
    row("  Put, gRPC only", "put_grpc_gbps", "GB/s");
    if (groups.redis) row("  Redis GET (reference)", "redis_get_gbps", "GB/s");
    row("  raw TCP (ceiling)", "tcp_gbps", "GB/s");
    if (groups.redis) {
      ratio("  data-port Fetch / Redis", "fetch_dataport_vs_redis");
      ratio("  gRPC Fetch / Redis", "fetch_grpc_vs_redis");
    }
  }
  if (groups.lookup) {
    std::cout << absl::StrFormat(
        "\nLookup, 1,024-key batches, M key checks/s (1 thread / 2 threads): same host %.2f / "
        "%.2f; remote, data port %.2f / %.2f; remote, gRPC only %.2f / %.2f\n",
        At(med, "lookup_keys_per_s_1") / 1e6, At(med, "lookup_keys_per_s_2") / 1e6,
        At(med, "lookup_dataport_keys_per_s_1") / 1e6, At(med, "lookup_dataport_keys_per_s_2") / 1e6,
        At(med, "lookup_grpc_keys_per_s_1") / 1e6, At(med, "lookup_grpc_keys_per_s_2") / 1e6);
    if (groups.redis) {
      std::cout << absl::StrFormat(
          "  Redis EXISTS of as many 33-byte keys: %.2f / %.2f; of it: same host %.2fx / %.2fx, "
          "data port %.2fx / %.2fx, gRPC %.2fx / %.2fx\n",
          At(med, "redis_exists_keys_per_s_1") / 1e6, At(med, "redis_exists_keys_per_s_2") / 1e6,
          At(med, "lookup_vs_redis_exists_1"), At(med, "lookup_vs_redis_exists_2"),
          At(med, "lookup_dataport_vs_redis_exists_1"), At(med, "lookup_dataport_vs_redis_exists_2"),
          At(med, "lookup_grpc_vs_redis_exists_1"), At(med, "lookup_grpc_vs_redis_exists_2"));
    }
    std::cout << absl::StrFormat(
        "Lookup of a cached 64-key chain, p50: %.1f us same host (block directory), %.1f us "
        "data port, %.1f us gRPC%s\n",
        At(med, "lookup_chain64_p50_us_direct"), At(med, "lookup_chain64_p50_us_dataport"),
        At(med, "lookup_chain64_p50_us_grpc"),
        groups.redis ? absl::StrFormat("; Redis EXISTS of 64 keys %.1f us (%.1f us waiting "
                                       "for the reply as our Lookup does)",
                                       At(med, "redis_exists64_p50_us"),
                                       At(med, "redis_exists64_spin_p50_us"))
                     : "");
  }
}

absl::Status WriteBenchBars(const std::map<std::string, double>& med, const std::string& json,
                            const std::string& dir) {
  mkdir(dir.c_str(), 0755);  // fine if it exists; the writes below say if not
  if (absl::Status s = WriteTextFile(dir + "/kvbench_results.json", json + "\n"); !s.ok()) {
    return s;
  }
  const std::pair<const char*, const char*> bars[] = {
      {"same-host Fetch (direct), 8-block prefix", "fetch_samehost_prefix_gbps"},
      {"memcpy of 8 blocks", "memcpy_for_samehost_prefix_gbps"},
      {"same-host Fetch (direct), 1 block", "fetch_samehost_gbps"},
      {"same-host Fetch by lease, 1 block", "fetch_samehost_lease_gbps"},
      {"memcpy of 1 block", "memcpy_for_samehost_gbps"},
      {"data-port Fetch", "fetch_dataport_gbps"},
      {"gRPC-only Fetch", "fetch_grpc_gbps"},
      {"Redis GET", "redis_get_gbps"},
      {"raw loopback TCP", "tcp_gbps"},
  };
  std::string data = "# what \"1 stream\" \"4 streams\" (GB/s)\n";
  for (const auto& [label, key] : bars) {
    const std::string k = key;
    if (!med.contains(k + "_1")) continue;  // a group left out with --only
    absl::StrAppendFormat(&data, "\"%s\" %.3f %.3f\n", label, At(med, k + "_1"), At(med, k + "_4"));
  }
  if (absl::Status s = WriteTextFile(dir + "/kvbench_bars.dat", data); !s.ok()) return s;
  return RunGnuplot(dir + "/kvbench_bars.gp",
                    absl::StrCat("set terminal pngcairo size 1000,560 font 'sans,11'\n"
                                 "set output '",
                                 dir,
                                 "/kvbench_bars.png'\n"
                                 "set title 'kvbench: 2 MiB blocks, each path next to its "
                                 "references (medians)'\n"
                                 "set style data histograms\nset style histogram clustered gap 1\n"
                                 "set style fill solid 0.85 border -1\nset boxwidth 0.9\n"
                                 "set ylabel 'GB/s'\nset yrange [0:*]\nset grid ytics\n"
                                 "set xtics rotate by -30 scale 0\nset key top right\n"
                                 "plot '",
                                 dir,
                                 "/kvbench_bars.dat' using 2:xtic(1) title "
                                 "'1 stream', '' using 3 title '4 streams'\n"));
}

}  // namespace kvcache
