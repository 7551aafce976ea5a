// Starts a real kvstored on a free loopback port (for tests and kvbench), and
// stops it with SIGTERM (reporting whether it exited cleanly).
#ifndef KVCACHE_TOOLS_DAEMON_PROCESS_H_
#define KVCACHE_TOOLS_DAEMON_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kvcache {

class DaemonProcess {
 public:
  // Runs `binary` with `flags` plus --listen=127.0.0.1:0 and waits until it
  // serves. Tests pass "kvstore/kvstored" (their runfiles).
  static absl::StatusOr<std::unique_ptr<DaemonProcess>> Start(const std::string& binary,
                                                              std::vector<std::string> flags);
  // Stops the daemon if still running.
  ~DaemonProcess();

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Sends SIGTERM and waits; returns the exit status (0 on a clean drain).
  int Stop();
  // Sends SIGKILL and waits: a crash, for restart tests.
  void Kill();
  pid_t pid() const { return pid_; }

 private:
  DaemonProcess(pid_t pid, int port) : pid_(pid), port_(port) {}
  pid_t pid_;
  int port_;
};

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_DAEMON_PROCESS_H_
