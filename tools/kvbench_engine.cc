#include "tools/kvbench_engine.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"

namespace kvcache {

int RunEngineBench(int argc, char** argv) {
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) {
    std::cerr << "kvbench engine: cannot find where kvbench lives\n";
    return 1;
  }
  self[n] = '\0';
  const std::string dir = std::string(self).substr(0, std::string(self).rfind('/'));
  const std::string bench = dir + "/engine/bench";
  std::vector<char*> args = {const_cast<char*>(bench.c_str())};
  bool kvstored_given = false;
  for (int i = 2; i < argc; ++i) {
    args.push_back(argv[i]);
    kvstored_given |= absl::StartsWith(argv[i], "--kvstored");
  }
  // The engine bench's default is a runfiles path; kvbench's own default
  // binary is the one that was built beside it.
  std::string kvstored = "--kvstored=" + dir + "/../kvstore/kvstored";
  if (!kvstored_given) args.push_back(kvstored.data());
  args.push_back(nullptr);
  execv(bench.c_str(), args.data());
  std::cerr << "kvbench engine: cannot run " << bench << ": " << std::strerror(errno)
            << "\n  build it first: bazel build --config=opt //tools:kvbench "
               "//tools/engine:bench //kvstore:kvstored\n";
  return 1;
}

}  // namespace kvcache
