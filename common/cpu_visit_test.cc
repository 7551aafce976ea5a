#include "common/cpu_visit.h"

#include <sched.h>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

int AllowedCpus(cpu_set_t* set) {
  EXPECT_EQ(sched_getaffinity(0, sizeof(*set), set), 0);
  return CPU_COUNT(set);
}

TEST(CpuVisitTest, RunsOnTheCpuThenGetsItsCpusBack) {
  cpu_set_t before;
  if (AllowedCpus(&before) < 2) GTEST_SKIP() << "needs two CPUs to move between";
  int other = -1;
  for (int cpu = 0; cpu < CPU_SETSIZE && other < 0; ++cpu) {
    if (CPU_ISSET(cpu, &before) && cpu != sched_getcpu()) other = cpu;
  }
  ASSERT_GE(other, 0);
  {
    CpuVisit visit(other);
    EXPECT_TRUE(visit.moved());
    EXPECT_EQ(sched_getcpu(), other);
    cpu_set_t during;
    EXPECT_EQ(AllowedCpus(&during), 1);
  }
  cpu_set_t after;
  ASSERT_EQ(AllowedCpus(&after), CPU_COUNT(&before));
  EXPECT_TRUE(CPU_EQUAL(&after, &before));
}

TEST(CpuVisitTest, StaysForACpuItMayNotUseOrNone) {
  cpu_set_t before;
  AllowedCpus(&before);
  int forbidden = -1;
  for (int cpu = 0; cpu < CPU_SETSIZE && forbidden < 0; ++cpu) {
    if (!CPU_ISSET(cpu, &before)) forbidden = cpu;
  }
  for (int cpu : {-1, CPU_SETSIZE, forbidden}) {
    if (cpu == -1 && forbidden == -1) continue;
    CpuVisit visit(cpu);
    EXPECT_FALSE(visit.moved()) << cpu;
    cpu_set_t during;
    EXPECT_EQ(AllowedCpus(&during), CPU_COUNT(&before)) << cpu;
  }
  CpuVisit here(sched_getcpu());  // already there
  EXPECT_FALSE(here.moved());
}

}  // namespace
}  // namespace kvcache
