#include "kvstore/server/protobuf_log_limit.h"

#include <atomic>
#include <cstdio>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/mutex.h"
#include "google/protobuf/stubs/logging.h"

namespace kvcache {
namespace {

std::atomic<uint64_t> lines{0};
absl::Duration limit_interval = absl::Seconds(10);

Mutex& LogMutex() {
  static Mutex* mu = new Mutex;
  return *mu;
}
absl::Time last_written ABSL_GUARDED_BY(LogMutex()) = absl::InfinitePast();
uint64_t left_out ABSL_GUARDED_BY(LogMutex()) = 0;

const char* LevelName(google::protobuf::LogLevel level) {
  switch (level) {
    case google::protobuf::LOGLEVEL_INFO:
      return "INFO";
    case google::protobuf::LOGLEVEL_WARNING:
      return "WARNING";
    case google::protobuf::LOGLEVEL_ERROR:
      return "ERROR";
    case google::protobuf::LOGLEVEL_FATAL:
      return "FATAL";
  }
  return "?";
}

void Handler(google::protobuf::LogLevel level, const char* filename, int line,
             const std::string& message) {
  lines.fetch_add(1, std::memory_order_relaxed);
  const absl::Time now = absl::Now();
  uint64_t skipped;
  {
    MutexLock lock(&LogMutex());
    if (level != google::protobuf::LOGLEVEL_FATAL && now - last_written < limit_interval) {
      ++left_out;
      return;
    }
    last_written = now;
    skipped = left_out;
    left_out = 0;
  }
  if (skipped > 0) {
    Log(LogLevel::kWarning,
        absl::StrFormat("[libprotobuf] %d similar lines left out in the last %s", skipped,
                        absl::FormatDuration(limit_interval)));
  }
  Log(level == google::protobuf::LOGLEVEL_INFO ? LogLevel::kInfo : LogLevel::kWarning,
      absl::StrFormat("[libprotobuf %s %s:%d] %s", LevelName(level), filename, line, message));
}

}  // namespace

void LimitProtobufLogging(absl::Duration interval) {
  limit_interval = interval;
  google::protobuf::SetLogHandler(&Handler);
}

uint64_t ProtobufLogLines() { return lines.load(std::memory_order_relaxed); }

}  // namespace kvcache
