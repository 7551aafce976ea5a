// Keeping the two ends of a same-host request on one CPU.
//
// Why: a same-host request is a strict ping-pong. The client sends, then
// only waits; the daemon's thread wakes, works, answers and sleeps. Left to
// the scheduler, each wake-up lands on the other (idle) CPU: on this VM that
// is an interrupt to a halted vCPU, 20-40 us each way, and the block a put
// hands over is then read from the other CPU's cache (a 2 MiB block's copy
// took 1.4x as long). With both ends on the CPU the client runs on, a 2 MiB
// lease fetch ran 1.3x and a put 1.25x as fast (docs/BENCHMARKS.md,
// "Same-host Put and lease Fetch on the client's CPU").
//
// The client says which CPU it runs on in each request; the daemon's
// session thread follows it there and stays (CpuFollower), so the next
// request wakes it on that CPU too. For a put, whose answer takes the
// daemon a copy and a hash of the block, the client also pins itself to
// that CPU until the answer (CurrentCpuPin): else the scheduler would wake
// it on the other CPU, and both ends would move each put (1 stream: 0.64-
// 0.73x memcpy pinned, 0.50-0.59x not). A lease fetch is answered at
// once, and there the pin's two sched_setaffinity calls cost more than
// they save: a 4 KiB lease fetch's round trip was 30-37 us pinned and
// 18-22 us not.
//
// Thread safety: both act on the calling thread only; use each object on
// the thread that made it.
#ifndef KVCACHE_COMMON_CPU_PIN_H_
#define KVCACHE_COMMON_CPU_PIN_H_

#include <sched.h>

namespace kvcache {

// Pins the calling thread to the CPU it runs on, until destroyed; then the
// thread may run on the CPUs it had again.
class CurrentCpuPin {
 public:
  CurrentCpuPin();
  ~CurrentCpuPin();
  CurrentCpuPin(const CurrentCpuPin&) = delete;
  CurrentCpuPin& operator=(const CurrentCpuPin&) = delete;

  // The CPU the thread is pinned to; -1 if it could not be pinned.
  int cpu() const { return cpu_; }

 private:
  cpu_set_t saved_;
  int cpu_ = -1;
};

// Moves the calling thread to CPUs it is told, one at a time, among those it
// could run on when the follower was made.
class CpuFollower {
 public:
  CpuFollower();
  // Puts the calling thread on `cpu` alone (it moves before this returns)
  // and keeps it there. False, changing nothing, for a negative `cpu` or one
  // the thread could not run on.
  bool Follow(int cpu);
  // The CPU followed last; -1 before any.
  int cpu() const { return cpu_; }

 private:
  cpu_set_t allowed_;
  bool known_ = false;  // allowed_ was read
  int cpu_ = -1;
};

}  // namespace kvcache

#endif  // KVCACHE_COMMON_CPU_PIN_H_
