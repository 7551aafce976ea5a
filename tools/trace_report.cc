#include "tools/trace_report.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/byte_size.h"

namespace kvcache {
namespace {

constexpr char kBegin[] = "<!-- kvbench trace begin -->";
constexpr char kEnd[] = "<!-- kvbench trace end -->";

std::string Conditions(const TraceReport& r) {
  return absl::StrFormat(
      "%d requests (%d prompt blocks, %d distinct) from %s; %s per block; %d workers; %s",
      r.requests, r.prompt_blocks, r.distinct_blocks, r.trace_path, FormatBytes(r.payload_bytes),
      r.workers,
      r.speedup > 0 ? absl::StrFormat("arrival times %gx faster", r.speedup)
                    : std::string("requests back to back"));
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

// Runs gnuplot on `script`; FAILED_PRECONDITION if it is not installed.
absl::Status Gnuplot(const std::string& script_path) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    return absl::FailedPreconditionError(
        "gnuplot not found (tools/scripts/install_deps.sh installs gnuplot-nox)");
  }
  const std::string cmd = absl::StrCat("gnuplot '", script_path, "'");
  if (std::system(cmd.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("gnuplot failed on ", script_path));
  }
  return absl::OkStatus();
}

}  // namespace

std::string TraceReportText(const TraceReport& r) {
  std::string out = absl::StrCat("kvbench trace: ", Conditions(r), "\n\n");
  absl::StrAppendFormat(&out, "%9s %9s %8s %8s %8s %8s %9s %8s %17s %17s %8s\n", "capacity",
                        "blocks", "kvcache", "LRU", "Belady", "vs LRU", "to Belady", "req/s",
                        "lookup p50/p99", "fetch p50/p99", "GB/s");
  for (const TraceReportRow& row : r.rows) {
    absl::StrAppendFormat(&out,
                          "%8g%% %9d %7.1f%% %7.1f%% %7.1f%% %+7.1f  %+8.1f %8.0f %7.0f/%-6.0fus "
                          "%7.0f/%-6.0fus %8.3f\n",
                          row.percent, row.capacity_blocks, row.ours * 100, row.lru * 100,
                          row.belady * 100, (row.ours - row.lru) * 100,
                          (row.belady - row.ours) * 100, row.requests_per_s, row.lookup_p50_us,
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
                        "prompt blocks.\nwrong blocks: %d, failed calls: %d, path fallbacks: %d\n",
                        wrong, failed, fallbacks);
  return out;
}

std::string TraceReportJson(const TraceReport& r) {
  std::vector<std::string> rows;
  for (const TraceReportRow& row : r.rows) {
    rows.push_back(absl::StrFormat(
        "{\"percent\": %g, \"capacity_blocks\": %d, \"hit_ratio\": %.5f, \"lru_hit_ratio\": "
        "%.5f, \"belady_hit_ratio\": %.5f, \"requests_per_s\": %.1f, \"lookup_p50_us\": %.1f, "
        "\"lookup_p99_us\": %.1f, \"fetch_p50_us\": %.1f, \"fetch_p99_us\": %.1f, "
        "\"served_gbps\": %.4f, \"seconds\": %.2f, \"failed_calls\": %d, \"wrong_blocks\": %d, "
        "\"local_path_blocks\": %d, \"path_fallbacks\": %d, \"tier\": \"host\"}",
        row.percent, row.capacity_blocks, row.ours, row.lru, row.belady, row.requests_per_s,
        row.lookup_p50_us, row.lookup_p99_us, row.fetch_p50_us, row.fetch_p99_us,
        row.served_gbps, row.seconds, row.failed_calls, row.wrong_blocks, row.local_path_blocks,
        row.path_fallbacks));
  }
  return absl::StrFormat(
      "{\"trace\": \"%s\", \"requests\": %d, \"prompt_blocks\": %d, \"distinct_blocks\": %d, "
      "\"payload_bytes\": %d, \"workers\": %d, \"speedup\": %g, \"capacities\": [%s]}",
      r.trace_path, r.requests, r.prompt_blocks, r.distinct_blocks, r.payload_bytes, r.workers,
      r.speedup, absl::StrJoin(rows, ", "));
}

std::string TraceReportMarkdown(const TraceReport& r, const std::string& image_dir) {
  std::string md = absl::StrCat("Written by `kvbench trace`: ", Conditions(r),
                                ". Every block the replay fetched was checked byte for byte.\n\n");
  if (!image_dir.empty()) {
    absl::StrAppend(&md, "![prefix hit ratio against capacity](", image_dir,
                    "/trace_hit_ratio.png)\n![service figures against capacity](", image_dir,
                    "/trace_service.png)\n\n");
  }
  md += "| capacity | blocks | kvcache | LRU | Belady | kvcache − LRU | Belady − kvcache |\n";
  md += "| --- | --- | --- | --- | --- | --- | --- |\n";
  for (const TraceReportRow& row : r.rows) {
    absl::StrAppendFormat(&md, "| %g%% | %d | **%.1f%%** | %.1f%% | %.1f%% | %+.1f | %+.1f |\n",
                          row.percent, row.capacity_blocks, row.ours * 100, row.lru * 100,
                          row.belady * 100, (row.ours - row.lru) * 100,
                          (row.belady - row.ours) * 100);
  }
  md += "\nService figures from the same replays (host tier; the only tier so far):\n\n";
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
  std::string data = "# percent kvcache lru belady lookup_p50 lookup_p99 fetch_p50 fetch_p99 rps\n";
  for (const TraceReportRow& row : r.rows) {
    absl::StrAppendFormat(&data, "%g %.3f %.3f %.3f %.1f %.1f %.1f %.1f %.1f\n", row.percent,
                          row.ours * 100, row.lru * 100, row.belady * 100, row.lookup_p50_us,
                          row.lookup_p99_us, row.fetch_p50_us, row.fetch_p99_us,
                          row.requests_per_s);
  }
  for (absl::Status s : {WriteFile(dir + "/trace_report.md", TraceReportMarkdown(r, ".")),
                         WriteFile(dir + "/trace_results.json", TraceReportJson(r) + "\n"),
                         WriteFile(dir + "/trace_plot.dat", data)}) {
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
      "'' using 1:3 with linespoints lw 2 title 'LRU (offline)'\n"
      "set output '", dir, "/trace_service.png'\n"
      "set title 'Replay service figures (host tier)'\n"
      "set ylabel 'latency (us)'\nset logscale y\nset yrange [*:*]\n"
      "set y2label 'requests/s'\nset y2tics\nset ytics nomirror\n"
      "plot '", dir, "/trace_plot.dat' using 1:5 with linespoints title 'Lookup p50', "
      "'' using 1:6 with linespoints title 'Lookup p99', "
      "'' using 1:7 with linespoints title 'Fetch p50', "
      "'' using 1:8 with linespoints title 'Fetch p99', "
      "'' using 1:9 axes x1y2 with linespoints lw 3 title 'requests/s'\n");
  const std::string script_path = dir + "/trace_plot.gp";
  if (absl::Status s = WriteFile(script_path, script); !s.ok()) return s;
  return Gnuplot(script_path);
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
  return WriteFile(doc, text);
}

}  // namespace kvcache
