// A progress line on stderr for kvbench's longer runs: a bar, counts and
// time left, redrawn in place on a terminal; elsewhere (a log, CI) one line
// at each quarter.
#ifndef KVCACHE_TOOLS_PROGRESS_BAR_H_
#define KVCACHE_TOOLS_PROGRESS_BAR_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace kvcache {

class ProgressBar {
 public:
  // `label` says what runs; `total` units (requests) make 100%.
  ProgressBar(std::string label, uint64_t total)
      : label_(std::move(label)), total_(total == 0 ? 1 : total), start_(absl::Now()),
        tty_(isatty(STDERR_FILENO) == 1) {}

  // Not thread-safe: call from one thread.
  void Update(uint64_t done) {
    const double f = std::min(1.0, static_cast<double>(done) / total_);
    const double elapsed = absl::ToDoubleSeconds(absl::Now() - start_);
    const double left = f > 0 ? elapsed * (1 - f) / f : 0;
    if (tty_) {
      const int filled = static_cast<int>(f * kWidth);
      std::fprintf(stderr, "\r%s [%s%s] %3.0f%% %llu/%llu, %.0f s left   ", label_.c_str(),
                   std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(),
                   f * 100, static_cast<unsigned long long>(done),
                   static_cast<unsigned long long>(total_), left);
      if (done >= total_) std::fprintf(stderr, "\n");
    } else if (static_cast<int>(f * 4) > quarters_) {
      quarters_ = static_cast<int>(f * 4);
      std::fprintf(stderr, "%s: %3.0f%% (%llu/%llu) after %.1f s\n", label_.c_str(), f * 100,
                   static_cast<unsigned long long>(done),
                   static_cast<unsigned long long>(total_), elapsed);
    }
    std::fflush(stderr);
  }

 private:
  static constexpr int kWidth = 30;
  const std::string label_;
  const uint64_t total_;
  const absl::Time start_;
  const bool tty_;
  int quarters_ = 0;
};

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_PROGRESS_BAR_H_
