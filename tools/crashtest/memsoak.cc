// memsoak: a real kvstored under a mixed load on all three paths for a long
// while (10 minutes by default), its resident memory sampled every second;
// says how far it went past the host arena. See soak.h.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "common/byte_size.h"
#include "tools/crashtest/soak.h"

ABSL_FLAG(int, seconds, 600, "How long the load runs.");
ABSL_FLAG(std::string, kvstored, "bazel-bin/kvstore/kvstored", "kvstored binary to start.");
ABSL_FLAG(std::string, dir, "",
          "NVMe directory of the daemon (emptied first). Empty: a fresh directory under "
          "$TMPDIR, removed afterwards.");
ABSL_FLAG(int, clients, 4, "Client threads; client c takes path c % 3 (same-host, data port, gRPC).");
ABSL_FLAG(std::string, host_capacity, "64MiB", "The daemon's DRAM tier.");
ABSL_FLAG(std::string, nvme_capacity, "256MiB", "The daemon's NVMe tier.");
ABSL_FLAG(uint32_t, prompts, 8192, "Prompts of 4-8 blocks of 64 KiB, in two namespaces.");
ABSL_FLAG(std::string, max_overhead, "",
          "Fail (exit 1) if resident memory ever passes the host capacity by more than this "
          "(e.g. 160MiB). Empty: only report.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Memory soak of kvstored: mixed load, resident memory sampled every second.\n"
      "  memsoak [--seconds=600] [--host_capacity=64MiB] [--max_overhead=160MiB]\n"
      "Exits 0 if no hit returned a wrong byte, the daemon stopped cleanly and (with\n"
      "--max_overhead) its memory stayed within the host capacity plus that overhead.");
  absl::ParseCommandLine(argc, argv);
  kvcache::SoakOptions options;
  options.duration = absl::Seconds(absl::GetFlag(FLAGS_seconds));
  options.kvstored = absl::GetFlag(FLAGS_kvstored);
  options.clients = absl::GetFlag(FLAGS_clients);
  options.host_capacity = absl::GetFlag(FLAGS_host_capacity);
  options.nvme_capacity = absl::GetFlag(FLAGS_nvme_capacity);
  options.prompts = absl::GetFlag(FLAGS_prompts);
  uint64_t max_overhead = UINT64_MAX;
  if (const std::string text = absl::GetFlag(FLAGS_max_overhead); !text.empty()) {
    absl::StatusOr<uint64_t> parsed = kvcache::ParseByteSize(text);
    if (!parsed.ok()) {
      std::cerr << "memsoak: --max_overhead: " << parsed.status().message() << "\n";
      return 2;
    }
    max_overhead = *parsed;
  }
  options.dir = absl::GetFlag(FLAGS_dir);
  const bool own_dir = options.dir.empty();
  if (own_dir) {
    const char* tmp = std::getenv("TMPDIR");
    options.dir = absl::StrFormat("%s/kvcache-memsoak-%d", tmp ? tmp : "/tmp", getpid());
  }
  using kvcache::FormatBytes;
  absl::StatusOr<kvcache::SoakReport> report =
      kvcache::RunSoak(options, [](const kvcache::SoakReport& r) {
        if (r.samples % 10 != 0) return;
        std::cerr << absl::StrFormat("memsoak: %.0f s: RSS max %s (heap %s, arena %s), %d blocks "
                                     "verified, %d wrong\n",
                                     r.seconds, FormatBytes(r.max.total), FormatBytes(r.max.anon),
                                     FormatBytes(r.max.shmem), r.blocks_verified, r.wrong_blocks);
      });
  if (own_dir) std::filesystem::remove_all(options.dir);
  if (!report.ok()) {
    std::cerr << "memsoak: " << report.status().message() << "\n";
    return 2;
  }
  const kvcache::SoakReport& r = *report;
  const bool passed = r.wrong_blocks == 0 && r.exit_status == 0 && r.blocks_verified > 0 &&
                      r.OverheadBytes() <= max_overhead;
  std::cout << absl::StrFormat(
      "memsoak: %.0f s, host capacity %s, %d samples\n"
      "  resident at start   %s (heap %s, arena %s, files %s)\n"
      "  resident max        %s (heap %s, arena %s, files %s)\n"
      "  past the arena      %s%s\n"
      "  blocks verified     %d, wrong %d; lookups %d, blocks put %d\n"
      "  stop (SIGTERM)      exit %d\n%s\n",
      r.seconds, FormatBytes(r.host_capacity_bytes), r.samples, FormatBytes(r.at_start.total),
      FormatBytes(r.at_start.anon), FormatBytes(r.at_start.shmem), FormatBytes(r.at_start.file),
      FormatBytes(r.max.total), FormatBytes(r.max.anon), FormatBytes(r.max.shmem),
      FormatBytes(r.max.file), FormatBytes(r.OverheadBytes()),
      max_overhead == UINT64_MAX ? "" : absl::StrCat(" (allowed ", FormatBytes(max_overhead), ")"),
      r.blocks_verified, r.wrong_blocks, r.lookups, r.blocks_put, r.exit_status,
      passed ? "PASSED" : "FAILED");
  return passed ? 0 : 1;
}
