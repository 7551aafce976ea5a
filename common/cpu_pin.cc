#include "common/cpu_pin.h"

namespace kvcache {
namespace {

bool PinTo(int cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return sched_setaffinity(0, sizeof(one), &one) == 0;
}

}  // namespace

CurrentCpuPin::CurrentCpuPin() {
  const int cpu = sched_getcpu();
  if (cpu < 0 || sched_getaffinity(0, sizeof(saved_), &saved_) != 0) return;
  if (PinTo(cpu)) cpu_ = cpu;
}

CurrentCpuPin::~CurrentCpuPin() {
  if (cpu_ >= 0) sched_setaffinity(0, sizeof(saved_), &saved_);
}

CpuFollower::CpuFollower() { known_ = sched_getaffinity(0, sizeof(allowed_), &allowed_) == 0; }

bool CpuFollower::Follow(int cpu) {
  if (cpu == cpu_ && cpu >= 0) return true;
  if (!known_ || cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed_)) return false;
  if (!PinTo(cpu)) return false;
  cpu_ = cpu;
  return true;
}

}  // namespace kvcache
