// The crash test (after RocksDB's db_crashtest): a real kvstored with a
// small DRAM tier over an NVMe tier, clients writing and reading chains
// whose bytes an oracle knows (oracle.h), `kill -9` at a random moment of
// each cycle, bits flipped in the data file and the index while the daemon
// is down, and a restart on the same directory. Every byte a hit returns is
// checked; a single wrong one fails the run.
//
// Each cycle the clients take the three paths a worker has (same-host,
// data port, gRPC), one per client thread. After the last cycle the daemon
// starts once more, every prompt of both namespaces is read back and
// checked, and the daemon is stopped with SIGTERM, which must drain cleanly.
//
// Thread safety: RunCrashTest is called from one thread; it starts its own.
#ifndef KVCACHE_TOOLS_CRASHTEST_CRASH_TEST_H_
#define KVCACHE_TOOLS_CRASHTEST_CRASH_TEST_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kvcache {

struct CrashTestOptions {
  std::string kvstored = "bazel-bin/kvstore/kvstored";
  std::string dir;  // the NVMe directory, emptied first; required
  int cycles = 20;
  uint64_t seed = 1;
  int clients = 3;  // threads, each with its own client and path
  // Each cycle's load runs for a random time in [min_run, max_run] (and
  // until some blocks were fetched) before the kill.
  absl::Duration min_run = absl::Milliseconds(300);
  absl::Duration max_run = absl::Milliseconds(1500);
  int data_bits_per_cycle = 2;   // flipped in block records while down
  int index_bits_per_damage = 1;  // flipped in the index's files ...
  int index_damage_every = 5;    // ... every this many cycles; 0: never
  uint64_t block_bytes = 64 << 10;
  uint32_t prompts = 256;  // chains of 4-8 blocks, in two namespaces
  std::string host_capacity = "4MiB";
  std::string nvme_capacity = "64MiB";
};

struct CrashTestReport {
  int cycles = 0;
  uint64_t lookups = 0;
  uint64_t blocks_verified = 0;  // fetched and compared with the oracle
  uint64_t wrong_blocks = 0;     // must be 0
  uint64_t blocks_put = 0;
  uint64_t data_bits_flipped = 0;
  uint64_t index_bits_flipped = 0;
  uint64_t index_set_aside = 0;     // restarts that found the index unreadable
  uint64_t nvme_off_restarts = 0;   // restarts whose NVMe tier was off: must be 0
  uint64_t restored_blocks_max = 0;  // most NVMe blocks a restart found
  uint64_t final_blocks_verified = 0;  // by the last sweep of every prompt
  int final_exit_status = -1;       // of the SIGTERM after the sweep: must be 0
  std::vector<double> restart_ms;   // start to serving, each start

  double RestartMedianMs() const;
  double RestartMaxMs() const;
  // True if nothing wrong was seen (the run's verdict).
  bool Passed() const {
    return wrong_blocks == 0 && nvme_off_restarts == 0 && final_exit_status == 0 &&
           blocks_verified > 0;
  }
};

// Runs the test; `on_cycle` (may be empty) is called after each cycle with
// the figures so far. An error only when the test itself cannot run (no
// binary, no directory); what the daemon did wrong is in the report.
absl::StatusOr<CrashTestReport> RunCrashTest(
    const CrashTestOptions& options,
    const std::function<void(const CrashTestReport&)>& on_cycle = nullptr);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_CRASHTEST_CRASH_TEST_H_
