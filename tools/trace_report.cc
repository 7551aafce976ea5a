#include "tools/trace_report.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/byte_size.h"
#include "tools/gnuplot.h"

namespace kvcache {
namespace {

constexpr char kBegin[] = "<!-- kvbench trace begin -->";
constexpr char kEnd[] = "<!-- kvbench trace end -->";

std::string Conditions(const TraceReport& r) {
  return absl::StrFormat(
      "%d requests (%d prompt blocks, %d distinct) from %s; %s per block; %s; %d workers; %s",
      r.requests, r.prompt_blocks, r.distinct_blocks, r.trace_path, FormatBytes(r.payload_bytes),
      r.mark_partial ? "partial last blocks put with evict_first" : "plain leaf LRU",
      r.workers,
      r.speedup > 0 ? absl::StrFormat("arrival times %gx faster", r.speedup)
                    : std::string("requests back to back"));
}

}  // namespace

std::string TraceReportText(const TraceReport& r) {
  std::string out = absl::StrCat("kvbench trace: ", Conditions(r), "\n\n");
  absl::StrAppendFormat(&out, "%9s %9s %8s %8s %8s %8s %9s | %9s %8s %17s %17s %8s\n",
                        "capacity", "blocks", "kvcache", "LRU", "Belady", "vs LRU", "to Belady",
                        "with fleet", "req/s", "lookup p50/p99", "fetch p50/p99", "GB/s");
  for (const TraceReportRow& row : r.rows) {
    absl::StrAppendFormat(&out,
                          "%8g%% %9d %7.2f%% %7.2f%% %7.2f%% %+7.2f  %+8.2f | %8.2f%% %8.0f "
                          "%7.0f/%-6.0fus %7.0f/%-6.0fus %8.3f\n",
                          row.percent, row.capacity_blocks, row.ours * 100, row.lru * 100,
                          row.belady * 100, (row.ours - row.lru) * 100,
                          (row.belady - row.ours) * 100, row.ours_concurrent * 100,
                          row.requests_per_s, row.lookup_p50_us,
                          row.lookup_p99_us, row.fetch_p50_us, row.fetch_p99_us, row.served_gbps);
  }
  uint64_t wrong = 0, failed = 0, fallbacks = 0;
  for (const TraceReportRow& row : r.rows) {
    wrong += row.wrong_blocks;
    failed += row.failed_calls;
    fallbacks += row.path_fallbacks;
  }
  absl::StrAppendFormat(&out,
                        "\nhit ratio: blocks in each request's leading cached run over all "
                        "prompt blocks; kvcache replayed in trace order (as the offline LRU and "
                        "Belady see it), and \"with fleet\" by %d concurrent workers, whose "
                        "replay also gives the service figures.\nwrong blocks: %d, failed "
                        "calls: %d, path fallbacks: %d\n",
                        r.workers, wrong, failed, fallbacks);
  return out;
}

std::string TraceReportJson(const TraceReport& r) {
  std::vector<std::string> rows;
  for (const TraceReportRow& row : r.rows) {
    rows.push_back(absl::StrFormat(
        "{\"percent\": %g, \"capacity_blocks\": %d, \"hit_ratio\": %.5f, "
        "\"hit_ratio_concurrent\": %.5f, \"lru_hit_ratio\": "
        "%.5f, \"belady_hit_ratio\": %.5f, \"requests_per_s\": %.1f, \"lookup_p50_us\": %.1f, "
        "\"lookup_p99_us\": %.1f, \"fetch_p50_us\": %.1f, \"fetch_p99_us\": %.1f, "
        "\"served_gbps\": %.4f, \"seconds\": %.2f, \"failed_calls\": %d, \"wrong_blocks\": %d, "
        "\"local_path_blocks\": %d, \"path_fallbacks\": %d, \"tier\": \"host\"}",
        row.percent, row.capacity_blocks, row.ours, row.ours_concurrent, row.lru, row.belady,
        row.requests_per_s,
        row.lookup_p50_us, row.lookup_p99_us, row.fetch_p50_us, row.fetch_p99_us,
        row.served_gbps, row.seconds, row.failed_calls, row.wrong_blocks, row.local_path_blocks,
        row.path_fallbacks));
  }
  return absl::StrFormat(
      "{\"trace\": \"%s\", \"requests\": %d, \"prompt_blocks\": %d, \"distinct_blocks\": %d, "
      "\"payload_bytes\": %d, \"workers\": %d, \"speedup\": %g, \"mark_partial\": %s, "
      "\"capacities\": [%s]}",
      r.trace_path, r.requests, r.prompt_blocks, r.distinct_blocks, r.payload_bytes, r.workers,
      r.speedup, r.mark_partial ? "true" : "false", absl::StrJoin(rows, ", "));
}

std::string TraceReportMarkdown(const TraceReport& r, const std::string& image_dir) {
  std::string md = absl::StrCat("Written by `kvbench trace`: ", Conditions(r),
                                ". Every block the replay fetched was checked byte for byte.\n\n");
  if (!image_dir.empty()) {
    absl::StrAppend(&md, "![prefix hit ratio against capacity](", image_dir,
                    "/trace_hit_ratio.png)\n![service figures against capacity](", image_dir,
                    "/trace_service.png)\n\n");
  }
  md += "Prefix hit ratio: the blocks in each request's leading cached run over all prompt "
        "blocks. kvcache is replayed in trace order, as the offline LRU and Belady see it; the "
        "last column is the replay by the concurrent workers.\n\n";
  md += absl::StrFormat(
      "| capacity | blocks | kvcache | LRU | Belady | kvcache − LRU | Belady − kvcache | "
      "kvcache, %d workers |\n",
      r.workers);
  md += "| --- | --- | --- | --- | --- | --- | --- | --- |\n";
  for (const TraceReportRow& row : r.rows) {
    absl::StrAppendFormat(
        &md, "| %g%% | %d | **%.2f%%** | %.2f%% | %.2f%% | %+.2f | %+.2f | %.2f%% |\n",
        row.percent, row.capacity_blocks, row.ours * 100, row.lru * 100, row.belady * 100,
        (row.ours - row.lru) * 100, (row.belady - row.ours) * 100, row.ours_concurrent * 100);
  }
  md += absl::StrFormat(
      "\nService figures from the replay by %d workers (host tier; the only tier so far):\n\n",
      r.workers);
  md += "| capacity | requests/s | Lookup p50 / p99 | Fetch p50 / p99 | GB/s served | wrong "
        "blocks | failed calls |\n";
  md += "| --- | --- | --- | --- | --- | --- | --- |\n";
  for (const TraceReportRow& row : r.rows) {
    absl::StrAppendFormat(&md, "| %g%% | %.0f | %.0f / %.0f µs | %.0f / %.0f µs | %.3f | %d | %d |\n",
                          row.percent, row.requests_per_s, row.lookup_p50_us, row.lookup_p99_us,
                          row.fetch_p50_us, row.fetch_p99_us, row.served_gbps, row.wrong_blocks,
                          row.failed_calls);
  }
  return md;
}

absl::Status WriteTraceReport(const TraceReport& r, const std::string& dir) {
  mkdir(dir.c_str(), 0755);  // fine if it exists; the writes below say if not
  std::string data =
      "# percent kvcache lru belady lookup_p50 lookup_p99 fetch_p50 fetch_p99 rps concurrent\n";
  for (const TraceReportRow& row : r.rows) {
    absl::StrAppendFormat(&data, "%g %.3f %.3f %.3f %.1f %.1f %.1f %.1f %.1f %.3f\n", row.percent,
                          row.ours * 100, row.lru * 100, row.belady * 100, row.lookup_p50_us,
                          row.lookup_p99_us, row.fetch_p50_us, row.fetch_p99_us,
                          row.requests_per_s, row.ours_concurrent * 100);
  }
  for (absl::Status s : {WriteTextFile(dir + "/trace_report.md", TraceReportMarkdown(r, ".")),
                         WriteTextFile(dir + "/trace_results.json", TraceReportJson(r) + "\n"),
                         WriteTextFile(dir + "/trace_plot.dat", data)}) {
    if (!s.ok()) return s;
  }
  const std::string script = absl::StrCat(
      "set terminal pngcairo size 900,560 font 'sans,11'\n"
      "set datafile commentschars '#'\n"
      "set logscale x\nset grid\nset key top left\n"
      "set xlabel 'cache capacity (% of the trace''s distinct blocks)'\n"
      "set output '", dir, "/trace_hit_ratio.png'\n"
      "set title 'Prefix hit ratio on the conversation trace'\n"
      "set ylabel 'prefix hit ratio (%)'\nset yrange [0:*]\n"
      "plot '", dir, "/trace_plot.dat' using 1:4 with linespoints lw 2 title 'Belady (offline)', "
      "'' using 1:2 with linespoints lw 3 title 'kvcache (replayed)', "
      "'' using 1:3 with linespoints lw 2 title 'LRU (offline)', "
      "'' using 1:10 with linespoints dt 2 title 'kvcache, concurrent workers'\n"
      "set output '", dir, "/trace_service.png'\n"
      "set title 'Replay service figures (host tier)'\n"
      "set ylabel 'latency (us)'\nset logscale y\nset yrange [*:*]\n"
      "set y2label 'requests/s'\nset y2tics\nset ytics nomirror\n"
      "plot '", dir, "/trace_plot.dat' using 1:5 with linespoints title 'Lookup p50', "
      "'' using 1:6 with linespoints title 'Lookup p99', "
      "'' using 1:7 with linespoints title 'Fetch p50', "
      "'' using 1:8 with linespoints title 'Fetch p99', "
      "'' using 1:9 axes x1y2 with linespoints lw 3 title 'requests/s'\n");
  return RunGnuplot(dir + "/trace_plot.gp", script);
}

absl::Status SpliceTraceReport(const TraceReport& r, const std::string& doc,
                               const std::string& image_dir) {
  std::ifstream in(doc);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", doc));
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  // Plots are linked relative to the document.
  std::string images = image_dir;
  const size_t slash = doc.rfind('/');
  const std::string doc_dir = slash == std::string::npos ? "" : doc.substr(0, slash + 1);
  if (!doc_dir.empty() && images.rfind(doc_dir, 0) == 0) images = images.substr(doc_dir.size());
  const std::string section =
      absl::StrCat(kBegin, "\n", TraceReportMarkdown(r, images), kEnd);
  const size_t begin = text.find(kBegin);
  const size_t end = text.find(kEnd);
  if (begin != std::string::npos && end != std::string::npos && end > begin) {
    text.replace(begin, end + sizeof(kEnd) - 1 - begin, section);
  } else {
    absl::StrAppend(&text, "\n", section, "\n");
  }
  return WriteTextFile(doc, text);
}

}  // namespace kvcache
