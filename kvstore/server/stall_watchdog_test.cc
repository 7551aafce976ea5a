#include "kvstore/server/stall_watchdog.h"

#include <atomic>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace kvcache {
namespace {

class FakeStream : public Stallable {
 public:
  void Wait() { StartWaiting(); }
  void Progress() { StopWaiting(); }
  void OnStalled() override {
    StopWaiting();
    cut_off.fetch_add(1);
  }
  std::atomic<int> cut_off{0};
};

// Waits up to 5 s for `done`.
template <typename Fn>
bool Eventually(Fn done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

TEST(StallWatchdogTest, CutsOffOnlyWhatWaitsPastTheLimit) {
  StallWatchdog watchdog(absl::Milliseconds(100));
  FakeStream waiting, busy, idle;
  watchdog.Add(&waiting);
  watchdog.Add(&busy);
  watchdog.Add(&idle);  // never waits: between requests
  waiting.Wait();
  const absl::Time start = absl::Now();
  // `busy` keeps making progress faster than the limit.
  while (absl::Now() - start < absl::Milliseconds(400)) {
    busy.Wait();
    absl::SleepFor(absl::Milliseconds(20));
    busy.Progress();
  }
  EXPECT_TRUE(Eventually([&] { return waiting.cut_off.load() == 1; }));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
  EXPECT_EQ(busy.cut_off.load(), 0);
  EXPECT_EQ(idle.cut_off.load(), 0);
  EXPECT_EQ(watchdog.stalled(), 1u);
  watchdog.Remove(&waiting);
  watchdog.Remove(&busy);
  watchdog.Remove(&idle);
}

TEST(StallWatchdogTest, RemovedStreamsAreNeverCalled) {
  StallWatchdog watchdog(absl::Milliseconds(20));
  FakeStream stream;
  watchdog.Add(&stream);
  watchdog.Remove(&stream);
  stream.Wait();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(stream.cut_off.load(), 0);
}

}  // namespace
}  // namespace kvcache
