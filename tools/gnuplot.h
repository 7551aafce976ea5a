// Runs Debian's gnuplot on a script kvbench wrote (plots for the reports).
#ifndef KVCACHE_TOOLS_GNUPLOT_H_
#define KVCACHE_TOOLS_GNUPLOT_H_

#include <string>

#include "absl/status/status.h"

namespace kvcache {

// Writes `text` to `path`, replacing it. UNAVAILABLE if it cannot.
absl::Status WriteTextFile(const std::string& path, const std::string& text);

// Writes `script` to `script_path` and runs gnuplot on it.
// FAILED_PRECONDITION naming the package if gnuplot is not installed.
absl::Status RunGnuplot(const std::string& script_path, const std::string& script);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_GNUPLOT_H_
