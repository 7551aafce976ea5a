#include "common/cpu_visit.h"

namespace kvcache {

CpuVisit::CpuVisit(int cpu) {
  if (cpu < 0 || cpu >= CPU_SETSIZE || cpu == sched_getcpu()) return;
  if (sched_getaffinity(0, sizeof(saved_), &saved_) != 0 || !CPU_ISSET(cpu, &saved_)) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  // The kernel moves a running thread before the call returns.
  moved_ = sched_setaffinity(0, sizeof(one), &one) == 0;
}

CpuVisit::~CpuVisit() {
  if (moved_) sched_setaffinity(0, sizeof(saved_), &saved_);
}

}  // namespace kvcache
