// Runs the calling thread on one CPU for a while, then gives it back the
// CPUs it had.
//
// Why: a same-host put's bytes were just written (or hashed) by the client
// on its CPU, which then sleeps until the daemon answers. Copying them on
// that CPU reads them from its caches; from the other CPU of a 2-vCPU VM a
// 2 MiB block's copy took 1.4x as long (docs/BENCHMARKS.md, "Same-host
// Put"). The scheduler wakes the daemon on an idle CPU instead.
//
// Thread safety: affects only the calling thread; create and destroy it on
// the same thread.
#ifndef KVCACHE_COMMON_CPU_VISIT_H_
#define KVCACHE_COMMON_CPU_VISIT_H_

#include <sched.h>

namespace kvcache {

class CpuVisit {
 public:
  // Moves the calling thread to `cpu` if it is one of the CPUs the thread
  // may run on now (else, or for a negative `cpu`, does nothing).
  explicit CpuVisit(int cpu);
  // Restores the thread's CPUs (it stays where it is until the scheduler
  // moves it).
  ~CpuVisit();
  CpuVisit(const CpuVisit&) = delete;
  CpuVisit& operator=(const CpuVisit&) = delete;

  // Whether the thread was moved.
  bool moved() const { return moved_; }

 private:
  cpu_set_t saved_;
  bool moved_ = false;
};

}  // namespace kvcache

#endif  // KVCACHE_COMMON_CPU_VISIT_H_
