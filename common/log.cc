#include "common/log.h"

#include <unistd.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/mutex.h"

namespace kvcache {
namespace {

struct Logger {
  Mutex mu;
  LogSink sink ABSL_GUARDED_BY(mu);
  std::string program ABSL_GUARDED_BY(mu) = "kvstored";
};

Logger& TheLogger() {
  static Logger* logger = new Logger;  // never destroyed: threads may log at exit
  return *logger;
}

}  // namespace

void Log(LogLevel level, absl::string_view message) {
  Logger& logger = TheLogger();
  MutexLock lock(&logger.mu);
  if (logger.sink) {
    logger.sink(level, message);
    return;
  }
  const std::string line = absl::StrCat(logger.program, ": ", message, "\n");
  // One write: stderr is unbuffered, and a line must not split.
  const ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

LogSink SetLogSink(LogSink sink) {
  Logger& logger = TheLogger();
  MutexLock lock(&logger.mu);
  return std::exchange(logger.sink, std::move(sink));
}

void SetLogProgramName(absl::string_view name) {
  Logger& logger = TheLogger();
  MutexLock lock(&logger.mu);
  logger.program = std::string(name);
}

}  // namespace kvcache
