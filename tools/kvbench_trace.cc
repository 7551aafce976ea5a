#include "tools/kvbench_trace.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/byte_size.h"
#include "tools/daemon_process.h"
#include "tools/progress_bar.h"
#include "tools/trace/prefix_sim.h"
#include "tools/trace/trace_replay.h"
#include "tools/trace_report.h"

ABSL_FLAG(std::string, trace, "../shared/traces/conversation_trace.jsonl",
          "trace: the .jsonl trace to replay (timestamp, hash_ids per line).");
ABSL_FLAG(std::string, capacities, "1,2,5,10,20,50,100",
          "trace: cache capacities to sweep, in percent of the trace's distinct blocks.");
ABSL_FLAG(std::string, payload, "4KiB",
          "trace: bytes per block (real KV blocks are MiBs; small keeps the run on this box).");
ABSL_FLAG(int, workers, 8, "trace: concurrent workers, each with its own client.");
ABSL_FLAG(bool, mark_partial, true,
          "trace: put each prompt's last block with evict_first when the prompt does not fill "
          "it (an engine's partial block); false replays plain leaf LRU.");
ABSL_FLAG(double, speedup, 0,
          "trace: replay the trace's arrival times this many times faster (the trace spans "
          "about an hour); 0 sends requests back to back.");
ABSL_FLAG(std::string, out, "",
          "Also write the results as JSON and PNG plots (gnuplot) to this directory: "
          "kvbench_results.json and kvbench_bars.png; with trace, trace_report.md, "
          "trace_results.json, trace_hit_ratio.png and trace_service.png.");
ABSL_FLAG(std::string, update, "",
          "trace: splice the report into this Markdown file, between the lines "
          "<!-- kvbench trace begin --> and <!-- kvbench trace end -->.");

namespace kvcache {
namespace {

// One replay on a fresh daemon holding row.capacity_blocks blocks.
absl::StatusOr<ReplayResult> Replay(const std::string& kvstored,
                                    const std::vector<TraceRequest>& trace,
                                    const std::vector<std::vector<BlockKey>>& keys,
                                    const TraceReportRow& row, uint64_t payload, int workers,
                                    double speedup, const std::string& label) {
  // One page per block, plus one per worker for the block it is staging.
  const uint64_t page = (payload + 4095) / 4096 * 4096;
  const uint64_t arena = (row.capacity_blocks + workers) * page;
  auto daemon = DaemonProcess::Start(
      kvstored, {absl::StrCat("--host_capacity=", arena), absl::StrCat("--page_size=", page),
                 absl::StrCat("--max_block_size=", page)});
  if (!daemon.ok()) {
    return absl::UnavailableError(
        absl::StrCat("starting kvstored: ", daemon.status().message()));
  }
  ProgressBar bar(label, trace.size());
  ReplayOptions options;
  options.address = (*daemon)->address();
  options.payload_bytes = payload;
  options.workers = workers;
  options.speedup = speedup;
  options.mark_partial_tail = absl::GetFlag(FLAGS_mark_partial);
  options.progress = [&bar](size_t done) { bar.Update(done); };
  return ReplayTrace(trace, keys, options);
}

}  // namespace

int RunTraceBench(const std::string& kvstored, bool json) {
  const std::string path = absl::GetFlag(FLAGS_trace);
  absl::StatusOr<std::vector<TraceRequest>> trace = LoadTrace(path);
  if (!trace.ok()) {
    std::cerr << "kvbench trace: " << trace.status().message() << "\n";
    return 2;
  }
  std::vector<double> percents;
  for (absl::string_view p : absl::StrSplit(absl::GetFlag(FLAGS_capacities), ',')) {
    double v = 0;
    if (!absl::SimpleAtod(p, &v) || v <= 0) {
      std::cerr << "kvbench trace: --capacities takes percents > 0, e.g. 1,5,100\n";
      return 2;
    }
    percents.push_back(v);
  }
  absl::StatusOr<uint64_t> payload = ParseByteSize(absl::GetFlag(FLAGS_payload));
  if (!payload.ok() || *payload == 0) {
    std::cerr << "kvbench trace: --payload: a size > 0, e.g. 4KiB\n";
    return 2;
  }
  const int workers = absl::GetFlag(FLAGS_workers);
  const double speedup = absl::GetFlag(FLAGS_speedup);
  if (workers < 1 || speedup < 0) {
    std::cerr << "kvbench trace: --workers must be >= 1 and --speedup >= 0\n";
    return 2;
  }
  const uint64_t distinct = DistinctBlocks(*trace);
  uint64_t prompt_blocks = 0;
  for (const TraceRequest& r : *trace) prompt_blocks += r.hash_ids.size();
  std::cerr << absl::StrFormat("kvbench trace: %d requests, %d prompt blocks, %d distinct\n",
                               trace->size(), prompt_blocks, distinct);
  absl::StatusOr<std::vector<std::vector<BlockKey>>> keys = TraceKeys(*trace);
  if (!keys.ok()) {
    std::cerr << "kvbench trace: hashing the trace: " << keys.status().message() << "\n";
    return 1;
  }

  TraceReport report;
  report.trace_path = path;
  report.requests = trace->size();
  report.prompt_blocks = prompt_blocks;
  report.distinct_blocks = distinct;
  report.payload_bytes = *payload;
  report.workers = workers;
  report.speedup = speedup;
  report.mark_partial = absl::GetFlag(FLAGS_mark_partial);
  for (double pct : percents) {
    TraceReportRow row;
    row.percent = pct;
    row.capacity_blocks = static_cast<uint64_t>(std::ceil(distinct * pct / 100));
    row.lru = SimulateLru(*trace, row.capacity_blocks).ratio();
    row.belady = SimulateBelady(*trace, row.capacity_blocks).ratio();
    // Twice, each on a fresh daemon: in trace order with one worker (the
    // hit ratio, comparable with the offline references, which see the same
    // order), then with --workers at --speedup (the service figures; there,
    // a request can miss blocks a concurrent one is still putting).
    absl::StatusOr<ReplayResult> ordered = Replay(kvstored, *trace, *keys, row, *payload, 1, 0,
                                                  absl::StrFormat("  %g%%, in order", pct));
    if (!ordered.ok()) {
      std::cerr << "kvbench trace: " << ordered.status().message() << "\n";
      return 1;
    }
    absl::StatusOr<ReplayResult> fleet =
        Replay(kvstored, *trace, *keys, row, *payload, workers, speedup,
               absl::StrFormat("  %g%%, %d workers", pct, workers));
    if (!fleet.ok()) {
      std::cerr << "kvbench trace: " << fleet.status().message() << "\n";
      return 1;
    }
    row.ours = ordered->hits.ratio();
    row.ours_concurrent = fleet->hits.ratio();
    row.requests_per_s = fleet->requests / fleet->seconds;
    row.lookup_p50_us = Quantile(fleet->lookup_us, 0.5);
    row.lookup_p99_us = Quantile(fleet->lookup_us, 0.99);
    row.fetch_p50_us = Quantile(fleet->fetch_us, 0.5);
    row.fetch_p99_us = Quantile(fleet->fetch_us, 0.99);
    row.served_gbps = fleet->fetched_bytes / fleet->seconds / 1e9;
    row.seconds = ordered->seconds + fleet->seconds;
    row.failed_calls = ordered->failed_calls + fleet->failed_calls;
    row.wrong_blocks = ordered->wrong_blocks + fleet->wrong_blocks;
    row.local_path_blocks = fleet->local_path_blocks;
    row.path_fallbacks = ordered->path_fallbacks + fleet->path_fallbacks;
    report.rows.push_back(row);
  }

  if (json) {
    std::cout << TraceReportJson(report) << "\n";
  } else {
    std::cout << TraceReportText(report);
  }
  if (const std::string out = absl::GetFlag(FLAGS_out); !out.empty()) {
    absl::Status s = WriteTraceReport(report, out);
    if (!s.ok()) {
      std::cerr << "kvbench trace: --out: " << s.message() << "\n";
      return 1;
    }
    std::cerr << "kvbench trace: wrote the report and plots to " << out << "\n";
  }
  if (const std::string doc = absl::GetFlag(FLAGS_update); !doc.empty()) {
    absl::Status s = SpliceTraceReport(report, doc, absl::GetFlag(FLAGS_out));
    if (!s.ok()) {
      std::cerr << "kvbench trace: --update: " << s.message() << "\n";
      return 1;
    }
    std::cerr << "kvbench trace: updated " << doc << "\n";
  }
  bool bad = false;
  for (const TraceReportRow& row : report.rows) bad |= row.wrong_blocks > 0;
  return bad ? 1 : 0;
}

}  // namespace kvcache
