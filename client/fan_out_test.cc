#include "client/fan_out.h"

#include <atomic>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace kvcache {
namespace {

// Waits until `count` tasks have arrived (or 5 s pass); true if they all did.
// Only tasks that run at the same time can all arrive.
class Rendezvous {
 public:
  explicit Rendezvous(int count) : count_(count) {}
  bool Arrive() {
    arrived_.fetch_add(1);
    const absl::Time give_up = absl::Now() + absl::Seconds(5);
    while (arrived_.load() < count_ && absl::Now() < give_up)
      absl::SleepFor(absl::Microseconds(50));
    return arrived_.load() >= count_;
  }

 private:
  const int count_;
  std::atomic<int> arrived_{0};
};

TEST(FanOutTest, RunsEveryRequestAtOnceAndReusesItsThreads) {
  FanOut pool;
  Rendezvous all(4);
  std::atomic<int> met{0};
  pool.Run(4, [&](size_t) { met += all.Arrive(); });
  EXPECT_EQ(met.load(), 4);
  EXPECT_EQ(pool.threads(), 3u);  // the caller ran one itself
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> ran{0};
    pool.Run(4, [&](size_t i) { ran += static_cast<int>(i) + 1; });
    EXPECT_EQ(ran.load(), 1 + 2 + 3 + 4);
  }
  // Reused, not one per call: a thread is free again before its caller
  // returns, so no later call needs a fourth.
  EXPECT_EQ(pool.threads(), 3u);
}

TEST(FanOutTest, ConcurrentCallersDoNotQueueBehindEachOther) {
  FanOut pool;
  // Three callers of 3 requests each, and every request blocks until all 9
  // run: only a pool that grows for them gets there.
  Rendezvous all(9);
  std::atomic<int> met{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&] { pool.Run(3, [&](size_t) { met += all.Arrive(); }); });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(met.load(), 9);
}

TEST(FanOutTest, IdleThreadsExit) {
  FanOut pool(absl::Milliseconds(20));
  pool.Run(5, [](size_t) {});
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (pool.threads() > 0 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(pool.threads(), 0u);
  std::atomic<int> ran{0};
  pool.Run(3, [&](size_t) { ++ran; });  // and new ones start when needed
  EXPECT_EQ(ran.load(), 3);
}

TEST(FanOutTest, OneRequestRunsOnTheCaller) {
  FanOut pool;
  std::thread::id ran_on;
  pool.Run(1, [&](size_t) { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(pool.threads(), 0u);
  pool.Run(0, [](size_t) { FAIL() << "nothing to run"; });
}

}  // namespace
}  // namespace kvcache
