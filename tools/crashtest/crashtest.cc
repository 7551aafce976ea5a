// crashtest: kill -9 a real kvstored over and over under load, flip bits in
// its NVMe files while it is down, restart it, and check every byte any
// hit returns against an oracle. See crash_test.h; docs/BENCHMARKS.md has
// the figures of a long run.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "tools/crashtest/crash_test.h"

ABSL_FLAG(int, cycles, 20, "Kill-and-restart cycles (the CI runs 20; 500 is the long mode).");
ABSL_FLAG(uint64_t, seed, 1, "Seed of every random choice: the same seed, the same test.");
ABSL_FLAG(std::string, kvstored, "bazel-bin/kvstore/kvstored", "kvstored binary to start.");
ABSL_FLAG(std::string, dir, "",
          "NVMe directory of the daemon under test (emptied first). Empty: a fresh directory "
          "under $TMPDIR, removed afterwards.");
ABSL_FLAG(int, clients, 3, "Client threads; each takes one path (same-host, data port, gRPC).");
ABSL_FLAG(int, min_run_ms, 300, "Shortest load before a cycle's kill.");
ABSL_FLAG(int, max_run_ms, 1500, "Longest load before a cycle's kill.");
ABSL_FLAG(int, flip_data_bits, 2, "Bits flipped in block records of the data file each cycle.");
ABSL_FLAG(int, flip_index_bits, 1, "Bits flipped in the RocksDB index's files when it is damaged.");
ABSL_FLAG(int, damage_index_every, 5, "Damage the index every this many cycles; 0: never.");
ABSL_FLAG(std::string, host_capacity, "4MiB", "The daemon's DRAM tier (small: blocks spill).");
ABSL_FLAG(std::string, nvme_capacity, "64MiB", "The daemon's NVMe tier.");
ABSL_FLAG(std::string, json, "", "Also write the figures to this file as JSON.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Crash test of kvstored with an oracle (like RocksDB's db_crashtest).\n"
      "  crashtest [--cycles=20] [--seed=1] [--kvstored=bazel-bin/kvstore/kvstored]\n"
      "Each cycle: start the daemon on the same NVMe directory, run clients that write\n"
      "and read chains whose bytes follow from their keys, kill -9 at a random moment,\n"
      "flip bits in the data file (and every --damage_index_every cycles in the index).\n"
      "Then one last start reads every prompt back and stops the daemon with SIGTERM.\n"
      "Exits 0 only if no hit returned a wrong byte, every restart had its NVMe tier\n"
      "and the last stop drained cleanly.");
  absl::ParseCommandLine(argc, argv);
  kvcache::CrashTestOptions options;
  options.cycles = absl::GetFlag(FLAGS_cycles);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.kvstored = absl::GetFlag(FLAGS_kvstored);
  options.clients = absl::GetFlag(FLAGS_clients);
  options.min_run = absl::Milliseconds(absl::GetFlag(FLAGS_min_run_ms));
  options.max_run = absl::Milliseconds(absl::GetFlag(FLAGS_max_run_ms));
  options.data_bits_per_cycle = absl::GetFlag(FLAGS_flip_data_bits);
  options.index_bits_per_damage = absl::GetFlag(FLAGS_flip_index_bits);
  options.index_damage_every = absl::GetFlag(FLAGS_damage_index_every);
  options.host_capacity = absl::GetFlag(FLAGS_host_capacity);
  options.nvme_capacity = absl::GetFlag(FLAGS_nvme_capacity);
  options.dir = absl::GetFlag(FLAGS_dir);
  const bool own_dir = options.dir.empty();
  if (own_dir) {
    const char* tmp = std::getenv("TMPDIR");
    options.dir = absl::StrFormat("%s/kvcache-crashtest-%d", tmp ? tmp : "/tmp", getpid());
  }
  absl::StatusOr<kvcache::CrashTestReport> report =
      kvcache::RunCrashTest(options, [&](const kvcache::CrashTestReport& r) {
        std::cerr << absl::StrFormat(
            "crashtest: cycle %d/%d: %d blocks verified, %d wrong, %d put, restart p50 %.0f ms\n",
            r.cycles, options.cycles, r.blocks_verified, r.wrong_blocks, r.blocks_put,
            r.RestartMedianMs());
      });
  if (own_dir) std::filesystem::remove_all(options.dir);
  if (!report.ok()) {
    std::cerr << "crashtest: " << report.status().message() << "\n";
    return 2;
  }
  const kvcache::CrashTestReport& r = *report;
  const std::string json = absl::StrFormat(
      "{\"cycles\": %d, \"seed\": %d, \"lookups\": %d, \"blocks_verified\": %d, "
      "\"wrong_blocks\": %d, \"blocks_put\": %d, \"data_bits_flipped\": %d, "
      "\"index_bits_flipped\": %d, \"index_set_aside\": %d, \"nvme_off_restarts\": %d, "
      "\"restored_blocks_max\": %d, \"final_blocks_verified\": %d, \"final_exit_status\": %d, "
      "\"restart_ms_median\": %.1f, \"restart_ms_max\": %.1f, \"passed\": %s}",
      r.cycles, options.seed, r.lookups, r.blocks_verified, r.wrong_blocks, r.blocks_put,
      r.data_bits_flipped, r.index_bits_flipped, r.index_set_aside, r.nvme_off_restarts,
      r.restored_blocks_max, r.final_blocks_verified, r.final_exit_status, r.RestartMedianMs(),
      r.RestartMaxMs(), r.Passed() ? "true" : "false");
  std::cout << absl::StrFormat(
      "crashtest: %d cycles, seed %d\n"
      "  blocks verified      %d (%d in the final sweep), wrong %d\n"
      "  lookups              %d, blocks put %d\n"
      "  bits flipped         %d in records, %d in the index (set aside %d times)\n"
      "  restarts             %d, NVMe tier off after %d, most blocks restored %d\n"
      "  restart to serving   p50 %.0f ms, max %.0f ms\n"
      "  last stop (SIGTERM)  exit %d\n"
      "%s\n",
      r.cycles, options.seed, r.blocks_verified, r.final_blocks_verified, r.wrong_blocks,
      r.lookups, r.blocks_put, r.data_bits_flipped, r.index_bits_flipped, r.index_set_aside,
      r.restart_ms.size(), r.nvme_off_restarts, r.restored_blocks_max, r.RestartMedianMs(),
      r.RestartMaxMs(), r.final_exit_status, r.Passed() ? "PASSED" : "FAILED");
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    std::ofstream(path) << json << "\n";
  }
  return r.Passed() ? 0 : 1;
}
