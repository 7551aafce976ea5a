// PEM files for TLS, read and checked before anything serves or dials with
// them: a daemon that would only fail its handshakes later (a key that does
// not match its certificate, an unreadable CA) refuses to start instead,
// naming the file.
//
// Thread safety: free functions, no shared state.
#ifndef KVCACHE_COMMON_TLS_FILES_H_
#define KVCACHE_COMMON_TLS_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kvcache {

// The whole of `path`; INVALID_ARGUMENT naming `flag` if it cannot be read.
absl::StatusOr<std::string> ReadPemFile(const std::string& path, const std::string& flag);

// OK when `cert` holds a certificate chain and `key` the private key of its
// first certificate; INVALID_ARGUMENT naming the flag and file otherwise.
// `flag_prefix` is how the flags are spelled ("--tls_" for --tls_cert and
// --tls_key).
absl::Status CheckTlsFiles(const std::string& cert, const std::string& key,
                           const std::string& flag_prefix);

// OK when `ca` holds at least one PEM certificate; INVALID_ARGUMENT naming
// `flag` otherwise.
absl::Status CheckCaFile(const std::string& ca, const std::string& flag);

}  // namespace kvcache

#endif  // KVCACHE_COMMON_TLS_FILES_H_
