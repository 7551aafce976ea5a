// Certificates for the security tests and `kvbench tls`, made with the
// openssl command line in a directory of the caller's: a CA with a server
// certificate for localhost and 127.0.0.1, client certificates
// (CN=worker-a) signed by it, by another CA, and one that expired yesterday.
#ifndef KVCACHE_TOOLS_PKI_FILES_H_
#define KVCACHE_TOOLS_PKI_FILES_H_

#include <cstdlib>
#include <fstream>
#include <string>
#include <tuple>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace kvcache {

struct PkiFiles {
  std::string ca;                       // the CA that signs the rest
  std::string server_cert, server_key;  // localhost, 127.0.0.1
  std::string client_cert, client_key;  // CN=worker-a
  std::string foreign_cert, foreign_key;  // CN=worker-a, from another CA
  std::string expired_cert, expired_key;  // CN=worker-a, expired yesterday
};

namespace pki_files_internal {

inline absl::Status Run(const std::string& command) {
  const std::string quiet = absl::StrCat(command, " >/dev/null 2>&1");
  if (std::system(quiet.c_str()) != 0) return absl::InternalError("failed: " + command);
  return absl::OkStatus();
}

// A P-256 key and a certificate for `cn` signed by `ca` (its .pem and .key).
inline absl::Status Issue(const std::string& dir, const std::string& name, const std::string& cn,
                          const std::string& ca, int days, const std::string& extensions) {
  const std::string base = absl::StrCat(dir, "/", name);
  if (absl::Status s = Run(absl::StrCat(
          "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ", base,
          ".key -out ", base, ".csr -subj /CN=", cn));
      !s.ok()) {
    return s;
  }
  std::string ext;
  if (!extensions.empty()) {
    std::ofstream(base + ".ext") << extensions << "\n";
    ext = absl::StrCat(" -extfile ", base, ".ext");
  }
  return Run(absl::StrCat("openssl x509 -req -in ", base, ".csr -CA ", ca, ".pem -CAkey ", ca,
                          ".key -CAcreateserial -out ", base, ".pem -days ", days, ext));
}

inline absl::Status MakeCa(const std::string& base, const std::string& cn) {
  return Run(absl::StrCat("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ",
                          "-keyout ", base, ".key -out ", base, ".pem -days 30 -subj /CN=", cn));
}

}  // namespace pki_files_internal

inline absl::StatusOr<PkiFiles> MakePkiFiles(const std::string& dir) {
  using pki_files_internal::Issue;
  using pki_files_internal::MakeCa;
  const std::string ca = dir + "/ca", other = dir + "/other-ca";
  for (absl::Status s : {
           MakeCa(ca, "kvcache-test-ca"),
           MakeCa(other, "another-ca"),
           Issue(dir, "server", "localhost", ca, 30,
                 "subjectAltName=DNS:localhost,IP:127.0.0.1"),
           Issue(dir, "client", "worker-a", ca, 30, ""),
           Issue(dir, "foreign", "worker-a", other, 30, ""),
           Issue(dir, "expired", "worker-a", ca, -1, ""),
       }) {
    if (!s.ok()) return s;
  }
  PkiFiles pki;
  pki.ca = ca + ".pem";
  for (auto [cert, key, name] : {std::tuple{&pki.server_cert, &pki.server_key, "server"},
                                 std::tuple{&pki.client_cert, &pki.client_key, "client"},
                                 std::tuple{&pki.foreign_cert, &pki.foreign_key, "foreign"},
                                 std::tuple{&pki.expired_cert, &pki.expired_key, "expired"}}) {
    *cert = absl::StrCat(dir, "/", name, ".pem");
    *key = absl::StrCat(dir, "/", name, ".key");
  }
  return pki;
}

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_PKI_FILES_H_
