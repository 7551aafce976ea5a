// One logger for library code. Debian's Abseil predates absl/log, so this
// is ours, and small: a line goes to stderr as "<program>: <message>", in
// one write so that threads' lines do not interleave, or to a sink that a
// program or a test sets instead.
//
//   Log(LogLevel::kWarning, absl::StrCat("NVMe tier: ", what, " disabled: ", why));
//
// Thread safety: all functions may be called from any thread.
#ifndef KVCACHE_COMMON_LOG_H_
#define KVCACHE_COMMON_LOG_H_

#include <functional>

#include "absl/strings/string_view.h"

namespace kvcache {

enum class LogLevel { kInfo, kWarning, kError };

// Writes one line (no newline in `message` needed).
void Log(LogLevel level, absl::string_view message);

// Where lines go instead of stderr; an empty sink restores stderr. Returns
// the sink it replaces. A sink must not call Log.
using LogSink = std::function<void(LogLevel level, absl::string_view message)>;
LogSink SetLogSink(LogSink sink);

// The name stderr lines start with: "kvstored" unless set.
void SetLogProgramName(absl::string_view name);

}  // namespace kvcache

#endif  // KVCACHE_COMMON_LOG_H_
