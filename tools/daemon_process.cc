#include "tools/daemon_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace kvcache {

absl::StatusOr<std::unique_ptr<DaemonProcess>> DaemonProcess::Start(
    const std::string& binary, std::vector<std::string> flags) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  static int counter = 0;
  const std::string port_file =
      absl::StrCat(tmp ? tmp : "/tmp", "/kvstored-", getpid(), "-", counter++, ".port");
  std::remove(port_file.c_str());
  std::vector<std::string> args = {binary, "--listen=127.0.0.1:0",
                                   "--port_file=" + port_file, "--drain_timeout_s=2"};
  args.insert(args.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  // The daemon's banner (stdout) is dropped: our stdout may be a report
  // (kvbench --json) that must hold nothing else, and the caller knows the
  // address. Its errors still reach our stderr.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  const int err = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    return absl::InternalError(absl::StrCat("spawning kvstored failed: ", err));
  }
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (absl::Now() < give_up) {
    int port = 0;
    std::ifstream in(port_file);
    if (in >> port && port > 0) {
      return std::unique_ptr<DaemonProcess>(new DaemonProcess(pid, port));
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return absl::InternalError(absl::StrCat("kvstored exited early with status ", status));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return absl::DeadlineExceededError("kvstored did not start serving within 20s");
}

int DaemonProcess::Stop() {
  if (pid_ <= 0) return 0;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void DaemonProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = 0;
}

DaemonProcess::~DaemonProcess() { Stop(); }

}  // namespace kvcache
