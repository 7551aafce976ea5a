#include "tools/crashtest/crash_test.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "grpcpp/grpcpp.h"
#include "kvcache/v1/kvcache.grpc.pb.h"
#include "tools/crashtest/file_damage.h"
#include "tools/crashtest/oracle_load.h"
#include "tools/daemon_process.h"

namespace kvcache {
namespace {

absl::StatusOr<std::unique_ptr<DaemonProcess>> StartDaemon(const CrashTestOptions& options,
                                                           CrashTestReport* report) {
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(
      options.kvstored, {"--host_capacity=" + options.host_capacity, "--page_size=64KiB",
                         "--nvme_dir=" + options.dir, "--nvme_capacity=" + options.nvme_capacity,
                         "--spill_high=0.5", "--spill_low=0.25"});
  if (daemon.ok()) report->restart_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
  return daemon;
}

// Reads the restarted daemon's NVMe state into the report.
void CheckRestart(const std::string& address, const std::string& dir, CrashTestReport* report) {
  auto stub = v1::KvCache::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::StatsResponse stats;
  bool nvme_on = false;
  if (stub->Stats(&ctx, {}, &stats).ok()) {
    for (const v1::TierStats& t : stats.tiers()) {
      if (t.tier() == v1::TIER_NVME) nvme_on = t.enabled();
    }
    report->restored_blocks_max =
        std::max<uint64_t>(report->restored_blocks_max, stats.nvme_restored_blocks());
  }
  if (!nvme_on) ++report->nvme_off_restarts;
  // The daemon set an unreadable index aside: count it, and clear the way
  // for the next one.
  std::error_code ec;
  if (std::filesystem::exists(dir + "/index.corrupt", ec)) {
    ++report->index_set_aside;
    std::filesystem::remove_all(dir + "/index.corrupt", ec);
  }
}

void Collect(const OracleCounters& c, CrashTestReport* report) {
  report->lookups = c.lookups.load();
  report->blocks_verified = c.verified.load();
  report->wrong_blocks = c.wrong.load();
  report->blocks_put = c.put.load();
}

}  // namespace

double CrashTestReport::RestartMedianMs() const {
  if (restart_ms.empty()) return 0;
  std::vector<double> v = restart_ms;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

double CrashTestReport::RestartMaxMs() const {
  return restart_ms.empty() ? 0 : *std::max_element(restart_ms.begin(), restart_ms.end());
}

absl::StatusOr<CrashTestReport> RunCrashTest(
    const CrashTestOptions& options, const std::function<void(const CrashTestReport&)>& on_cycle) {
  if (options.dir.empty() || options.cycles < 0 || options.clients < 1 || options.prompts < 1 ||
      options.min_run > options.max_run) {
    return absl::InvalidArgumentError(
        "crash test needs a directory, cycles >= 0, clients >= 1, prompts >= 1 and "
        "min_run <= max_run");
  }
  std::error_code ec;
  std::filesystem::remove_all(options.dir, ec);
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot make ", options.dir, ": ", ec.message()));
  std::mt19937_64 rng(options.seed);
  CrashTestReport report;
  OracleCounters counters;
  for (int cycle = 0; cycle < options.cycles; ++cycle) {
    absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = StartDaemon(options, &report);
    if (!daemon.ok()) return daemon.status();
    CheckRestart((*daemon)->address(), options.dir, &report);
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < options.clients; ++c) {
      const uint64_t seed = rng();
      clients.emplace_back([&, c, seed] {
        absl::StatusOr<std::unique_ptr<Client>> client =
            Client::Create(OracleClientOptions((*daemon)->address(), c % 3));
        if (!client.ok()) return;
        std::mt19937_64 mine(seed);
        while (!stop.load()) {
          ReadCheckAndFill(**client, kOracleNamespaces[mine() % 2],
                           static_cast<uint32_t>(mine() % options.prompts), options.block_bytes,
                           /*put_rest=*/mine() % 3 != 0, counters);
        }
      });
    }
    // Load for a random while, and until something was read (sanitizer
    // builds are slow), then a kill at that moment: puts, spills and
    // index writes in flight.
    const uint64_t verified_before = counters.verified.load();
    const absl::Duration span = options.max_run - options.min_run;
    const absl::Time kill_at =
        absl::Now() + options.min_run +
        (span > absl::ZeroDuration() ? absl::Nanoseconds(rng() % absl::ToInt64Nanoseconds(span))
                                     : absl::ZeroDuration());
    const absl::Time give_up = absl::Now() + absl::Seconds(20);
    while (absl::Now() < give_up &&
           (absl::Now() < kill_at || counters.verified.load() < verified_before + 5)) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    (*daemon)->Kill();
    stop = true;
    for (std::thread& t : clients) t.join();
    daemon->reset();
    // Damage while down.
    absl::StatusOr<int> flipped = FlipBitsInRecords(options.dir + "/blocks.data",
                                                    options.block_bytes,
                                                    options.data_bits_per_cycle, rng);
    if (!flipped.ok()) return flipped.status();
    report.data_bits_flipped += *flipped;
    if (options.index_damage_every > 0 && (cycle + 1) % options.index_damage_every == 0) {
      absl::StatusOr<std::string> hit =
          FlipBitsInIndex(options.dir + "/index", options.index_bits_per_damage, rng);
      if (!hit.ok()) return hit.status();
      if (!hit->empty()) report.index_bits_flipped += options.index_bits_per_damage;
    }
    report.cycles = cycle + 1;
    Collect(counters, &report);
    if (on_cycle) on_cycle(report);
  }
  // The last start: every prompt of both namespaces read back and checked,
  // then a clean stop.
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = StartDaemon(options, &report);
  if (!daemon.ok()) return daemon.status();
  CheckRestart((*daemon)->address(), options.dir, &report);
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(OracleClientOptions((*daemon)->address(), 1));
  if (!client.ok()) return client.status();
  const uint64_t verified_before = counters.verified.load();
  for (const char* ns : kOracleNamespaces) {
    for (uint32_t p = 0; p < options.prompts; ++p) {
      ReadCheckAndFill(**client, ns, p, options.block_bytes, /*put_rest=*/false, counters);
    }
  }
  client->reset();
  report.final_blocks_verified = counters.verified.load() - verified_before;
  report.final_exit_status = (*daemon)->Stop();
  Collect(counters, &report);
  return report;
}

}  // namespace kvcache
