// What `kvbench trace` found, and the ways it is written out: a text table,
// JSON, a Markdown section with gnuplot plots, spliced into a document.
#ifndef KVCACHE_TOOLS_TRACE_REPORT_H_
#define KVCACHE_TOOLS_TRACE_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace kvcache {

struct TraceReportRow {
  double percent = 0;  // of the trace's distinct blocks
  uint64_t capacity_blocks = 0;
  // Prefix hit ratios, 0..1: ours replayed in trace order, ours with the
  // concurrent workers, and the offline references.
  double ours = 0, ours_concurrent = 0, lru = 0, belady = 0;
  double requests_per_s = 0, served_gbps = 0, seconds = 0;
  double lookup_p50_us = 0, lookup_p99_us = 0, fetch_p50_us = 0, fetch_p99_us = 0;
  uint64_t failed_calls = 0, wrong_blocks = 0, local_path_blocks = 0, path_fallbacks = 0;
};

struct TraceReport {
  std::string trace_path;
  uint64_t requests = 0, prompt_blocks = 0, distinct_blocks = 0, payload_bytes = 0;
  int workers = 0;
  double speedup = 0;
  bool mark_partial = false;  // partial last blocks put with evict_first
  std::vector<TraceReportRow> rows;
};

std::string TraceReportText(const TraceReport& report);
std::string TraceReportJson(const TraceReport& report);
// A Markdown section; plots are linked under `image_dir` (relative to the
// document) when it is not empty.
std::string TraceReportMarkdown(const TraceReport& report, const std::string& image_dir);

// Writes trace_report.md, trace_results.json, the plots' data and, with
// gnuplot, trace_hit_ratio.png and trace_service.png into `dir` (created if
// missing). FAILED_PRECONDITION naming the package if gnuplot is missing.
absl::Status WriteTraceReport(const TraceReport& report, const std::string& dir);

// Replaces the text between "<!-- kvbench trace begin -->" and
// "<!-- kvbench trace end -->" in the Markdown file `doc` with the report
// (appends both markers and the report if absent). `image_dir` as written by
// WriteTraceReport, or empty for no plots.
absl::Status SpliceTraceReport(const TraceReport& report, const std::string& doc,
                               const std::string& image_dir);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_TRACE_REPORT_H_
