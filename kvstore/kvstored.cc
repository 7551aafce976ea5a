// kvstored: the kvcache daemon. Serves a host-DRAM (and NVMe) KV-block cache over gRPC.
// Run with --help for every flag.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "kvstore/daemon.h"
#include "kvstore/kvstored_flags.h"
#include "kvstore/server/protobuf_log_limit.h"

namespace kvcache {
namespace {

int Run() {
  absl::StatusOr<DaemonOptions> options = DaemonOptionsFromFlags();
  if (!options.ok()) {
    Log(LogLevel::kError, options.status().message());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(*options);
  if (!daemon.ok()) {
    Log(LogLevel::kError, daemon.status().message());
    return absl::IsInvalidArgument(daemon.status()) ? 2 : 1;
  }
  if (const std::string path = absl::GetFlag(FLAGS_port_file); !path.empty()) {
    std::ofstream(path) << (*daemon)->port() << "\n";
  }
  std::cout << (*daemon)->Banner() << "Stop with Ctrl-C (SIGINT) or SIGTERM.\n" << std::flush;

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    const absl::Status reloaded = (*daemon)->Reload();
    Log(reloaded.ok() ? LogLevel::kInfo : LogLevel::kError,
        reloaded.ok() ? std::string("SIGHUP: token file re-read")
                      : absl::StrCat("SIGHUP: keeping the identities in force: ",
                                     reloaded.message()));
  }
  std::cout << "kvstored: " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", draining for up to "
            << absl::GetFlag(FLAGS_drain_timeout_s) << "s" << std::endl;
  (*daemon)->Stop(absl::Seconds(absl::GetFlag(FLAGS_drain_timeout_s)));
  std::cout << "kvstored: stopped" << std::endl;
  return 0;
}

}  // namespace
}  // namespace kvcache

int main(int argc, char** argv) {
  // Block the stop signals before gRPC starts threads, so only sigwait sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // A file size limit (RLIMIT_FSIZE) on the NVMe file is an I/O error that
  // disables the tier, not a reason to die.
  signal(SIGXFSZ, SIG_IGN);
  // Requests allocate and free buffers of tens of KiB to a few MiB (a
  // 1,024-key lookup's keys and answer, a gRPC put's message). glibc gives
  // the freed top of a heap back to the kernel past 128 KiB by default, so
  // every such request faulted in fresh zeroed pages (5% of the daemon's
  // time in a lookup benchmark); keep up to 64 MiB of it instead.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 8 << 20);

  absl::SetProgramUsageMessage(
      "kvstored: the kvcache daemon. Caches KV blocks of LLM prompts in host DRAM (and on NVMe\n"
      "with --nvme_dir) and serves them over gRPC (service kvcache.v1.KvCache, with health "
      "checking and reflection).\n\n"
      "  kvstored                                  # 1 GiB host tier on 127.0.0.1:50051\n"
      "  kvstored --host_capacity=16GiB --listen=127.0.0.1:7070\n"
      "  kvstored --nvme_dir=/var/lib/kvstored --nvme_capacity=500GiB   # with an NVMe tier\n\n"
      "Sizes take units: 4096, 256KiB, 64MiB, 16GiB (KiB=1024, KB=1000).");
  // --help lists every flag of ours; they live in kvstored_flags.cc, which
  // absl's default (the main file's flags only) would leave out.
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "kvstore/kvstored");
  };
  absl::SetFlagsUsageConfig(usage);
  absl::ParseCommandLine(argc, argv);
  // Any client can make protobuf log (a string that is not UTF-8): at most
  // one such line per 10 s.
  kvcache::LimitProtobufLogging(absl::Seconds(10));
  return kvcache::Run();
}
