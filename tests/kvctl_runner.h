// Runs the kvctl binary (the test's runfile) as an operator would, for the
// kvctl tests.
#ifndef KVCACHE_TESTS_KVCTL_RUNNER_H_
#define KVCACHE_TESTS_KVCTL_RUNNER_H_

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace kvcache {

struct CliResult {
  int exit_code;
  std::string out;  // stdout and stderr
};

// `command` goes to a shell, its stderr with its stdout.
inline CliResult RunCommand(const std::string& command) {
  const std::string cmd = command + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// `args` go to a shell after "tools/kvctl ".
inline CliResult Kvctl(const std::string& args) { return RunCommand("tools/kvctl " + args); }

// A path in the test's scratch directory.
inline std::string TmpPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

}  // namespace kvcache

#endif  // KVCACHE_TESTS_KVCTL_RUNNER_H_
