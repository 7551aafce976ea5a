#include "common/cpu_pin.h"

#include <sched.h>

#include <thread>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

cpu_set_t Allowed() {
  cpu_set_t set;
  EXPECT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  return set;
}

TEST(CurrentCpuPinTest, PinsToTheCurrentCpuThenGivesTheOthersBack) {
  const cpu_set_t before = Allowed();
  {
    CurrentCpuPin pin;
    ASSERT_GE(pin.cpu(), 0);
    EXPECT_EQ(sched_getcpu(), pin.cpu());
    const cpu_set_t during = Allowed();
    EXPECT_EQ(CPU_COUNT(&during), 1);
    EXPECT_TRUE(CPU_ISSET(pin.cpu(), &during));
  }
  const cpu_set_t after = Allowed();
  EXPECT_TRUE(CPU_EQUAL(&after, &before));
}

// Runs in a thread of its own: following changes the thread's CPUs for good.
TEST(CpuFollowerTest, MovesToEachCpuItIsToldAndStays) {
  std::thread([] {
    const cpu_set_t allowed = Allowed();
    CpuFollower follower;
    EXPECT_EQ(follower.cpu(), -1);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &allowed)) continue;
      ASSERT_TRUE(follower.Follow(cpu)) << cpu;
      EXPECT_EQ(follower.cpu(), cpu);
      EXPECT_EQ(sched_getcpu(), cpu);
      const cpu_set_t now = Allowed();
      EXPECT_EQ(CPU_COUNT(&now), 1);
    }
  }).join();
}

TEST(CpuFollowerTest, RefusesCpusItCouldNotRunOn) {
  std::thread([] {
    const cpu_set_t allowed = Allowed();
    CpuFollower follower;
    EXPECT_FALSE(follower.Follow(-1));
    EXPECT_FALSE(follower.Follow(CPU_SETSIZE));
    EXPECT_FALSE(follower.Follow(1 << 20));
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &allowed)) {
        EXPECT_FALSE(follower.Follow(cpu)) << cpu;
        break;
      }
    }
    EXPECT_EQ(follower.cpu(), -1);
    const cpu_set_t now = Allowed();
    EXPECT_TRUE(CPU_EQUAL(&now, &allowed));  // nothing changed
  }).join();
}

}  // namespace
}  // namespace kvcache
