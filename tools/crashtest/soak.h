// The memory soak: one real kvstored (DRAM over NVMe) under a mixed load
// on all three paths for a long while, its resident memory sampled from
// /proc every second. What it shows: the daemon's memory is its host arena
// plus a bounded overhead, whatever the load does (docs/BENCHMARKS.md
// states the bound; soak_test holds the daemon to it).
//
// Thread safety: RunSoak is called from one thread; it starts its own.
#ifndef KVCACHE_TOOLS_CRASHTEST_SOAK_H_
#define KVCACHE_TOOLS_CRASHTEST_SOAK_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kvcache {

struct SoakOptions {
  std::string kvstored = "bazel-bin/kvstore/kvstored";
  std::string dir;  // the NVMe directory, emptied first; required
  absl::Duration duration = absl::Minutes(10);
  int clients = 4;  // threads; client c takes path c % 3
  uint64_t block_bytes = 64 << 10;
  // Prompts of 4-8 blocks in two namespaces: 8,192 of them want about
  // 6 GiB, far past both tiers, so the load keeps evicting and spilling.
  uint32_t prompts = 8192;
  std::string host_capacity = "64MiB";
  std::string nvme_capacity = "256MiB";
};

// Resident memory of a process, from /proc/PID/status, in bytes.
struct ResidentMemory {
  uint64_t total = 0;   // VmRSS
  uint64_t anon = 0;    // RssAnon: heap, stacks
  uint64_t shmem = 0;   // RssShmem: the host arena's memfd pages
  uint64_t file = 0;    // RssFile: the binary and libraries
};

struct SoakReport {
  double seconds = 0;
  uint64_t lookups = 0, blocks_verified = 0, wrong_blocks = 0, blocks_put = 0;
  uint64_t host_capacity_bytes = 0;
  uint64_t samples = 0;
  ResidentMemory at_start;  // first sample, once serving
  ResidentMemory max;       // the largest of each field over the run
  int exit_status = -1;     // of the SIGTERM at the end: must be 0

  // Largest resident memory beyond the host arena's capacity.
  uint64_t OverheadBytes() const {
    return max.total > host_capacity_bytes ? max.total - host_capacity_bytes : 0;
  }
};

// Reads /proc/`pid`/status. UNAVAILABLE if the process is gone or has
// exited (a zombie not yet waited for).
absl::StatusOr<ResidentMemory> ReadResidentMemory(int pid);

// Runs the soak; `on_sample` (may be empty) sees the report after each
// sample. An error only when the soak itself cannot run.
absl::StatusOr<SoakReport> RunSoak(const SoakOptions& options,
                                   const std::function<void(const SoakReport&)>& on_sample = nullptr);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_CRASHTEST_SOAK_H_
