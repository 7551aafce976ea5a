#include "tools/gnuplot.h"

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace kvcache {

absl::Status WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::Status RunGnuplot(const std::string& script_path, const std::string& script) {
  if (absl::Status s = WriteTextFile(script_path, script); !s.ok()) return s;
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    return absl::FailedPreconditionError(
        "gnuplot not found (tools/scripts/install_deps.sh installs gnuplot-nox)");
  }
  const std::string cmd = absl::StrCat("gnuplot '", script_path, "'");
  if (std::system(cmd.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("gnuplot failed on ", script_path));
  }
  return absl::OkStatus();
}

}  // namespace kvcache
