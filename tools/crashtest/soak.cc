#include "tools/crashtest/soak.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/byte_size.h"
#include "tools/crashtest/oracle_load.h"
#include "tools/daemon_process.h"

namespace kvcache {

absl::StatusOr<ResidentMemory> ReadResidentMemory(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  if (!in) return absl::UnavailableError(absl::StrCat("no process ", pid));
  ResidentMemory m;
  std::string line;
  bool has_rss = false;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    if (name == "State:" && line.find("zombie") != std::string::npos) {
      return absl::UnavailableError(absl::StrCat("process ", pid, " has exited"));
    }
    uint64_t kib = 0;
    fields >> kib;
    has_rss = has_rss || name == "VmRSS:";
    if (name == "VmRSS:") m.total = kib << 10;
    if (name == "RssAnon:") m.anon = kib << 10;
    if (name == "RssShmem:") m.shmem = kib << 10;
    if (name == "RssFile:") m.file = kib << 10;
  }
  if (!has_rss) return absl::UnavailableError(absl::StrCat("process ", pid, " has no memory"));
  return m;
}

absl::StatusOr<SoakReport> RunSoak(const SoakOptions& options,
                                   const std::function<void(const SoakReport&)>& on_sample) {
  absl::StatusOr<uint64_t> host_bytes = ParseByteSize(options.host_capacity);
  if (!host_bytes.ok()) return host_bytes.status();
  if (options.dir.empty() || options.clients < 1 || options.prompts < 1) {
    return absl::InvalidArgumentError("soak needs a directory, clients >= 1 and prompts >= 1");
  }
  std::error_code ec;
  std::filesystem::remove_all(options.dir, ec);
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot make ", options.dir, ": ", ec.message()));
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(
      options.kvstored, {"--host_capacity=" + options.host_capacity, "--page_size=64KiB",
                         "--nvme_dir=" + options.dir, "--nvme_capacity=" + options.nvme_capacity});
  if (!daemon.ok()) return daemon.status();
  SoakReport report;
  report.host_capacity_bytes = *host_bytes;
  OracleCounters counters;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < options.clients; ++c) {
    clients.emplace_back([&, c] {
      absl::StatusOr<std::unique_ptr<Client>> client =
          Client::Create(OracleClientOptions((*daemon)->address(), c % 3));
      if (!client.ok()) return;
      std::mt19937_64 rng(c + 1);
      // Skewed: half the requests go to the first eighth of the prompts,
      // so some blocks stay hot while the rest churn through both tiers.
      while (!stop.load()) {
        const uint32_t range = rng() % 2 == 0 ? std::max(1u, options.prompts / 8) : options.prompts;
        ReadCheckAndFill(**client, kOracleNamespaces[rng() % 2],
                         static_cast<uint32_t>(rng() % range), options.block_bytes,
                         /*put_rest=*/true, counters);
      }
    });
  }
  const absl::Time start = absl::Now();
  absl::Status sampled = absl::OkStatus();
  while (absl::Now() - start < options.duration) {
    absl::SleepFor(std::min(absl::Seconds(1), options.duration - (absl::Now() - start)));
    absl::StatusOr<ResidentMemory> m = ReadResidentMemory((*daemon)->pid());
    if (!m.ok()) {
      sampled = absl::InternalError(absl::StrCat("the daemon died during the soak: ", m.status().message()));
      break;
    }
    if (report.samples++ == 0) report.at_start = *m;
    report.max.total = std::max(report.max.total, m->total);
    report.max.anon = std::max(report.max.anon, m->anon);
    report.max.shmem = std::max(report.max.shmem, m->shmem);
    report.max.file = std::max(report.max.file, m->file);
    report.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    report.lookups = counters.lookups.load();
    report.blocks_verified = counters.verified.load();
    report.wrong_blocks = counters.wrong.load();
    report.blocks_put = counters.put.load();
    if (on_sample) on_sample(report);
  }
  stop = true;
  for (std::thread& t : clients) t.join();
  if (!sampled.ok()) return sampled;
  report.exit_status = (*daemon)->Stop();
  report.lookups = counters.lookups.load();
  report.blocks_verified = counters.verified.load();
  report.wrong_blocks = counters.wrong.load();
  report.blocks_put = counters.put.load();
  return report;
}

}  // namespace kvcache
