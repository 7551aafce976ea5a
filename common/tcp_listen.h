// A listening TCP socket on a literal address, as the daemon's side ports
// (the data port, /metrics) need: gRPC binds its own.
//
// Thread safety: a plain function.
#ifndef KVCACHE_COMMON_TCP_LISTEN_H_
#define KVCACHE_COMMON_TCP_LISTEN_H_

#include <string>
#include <utility>

#include "absl/status/statusor.h"

namespace kvcache {

// Binds `host` (an IPv4 or IPv6 literal without brackets, or "localhost")
// at `port` (0: a free one), with SO_REUSEADDR, and listens. Returns the
// socket and the bound port. INVALID_ARGUMENT for a host that is not an IP
// address, UNAVAILABLE if it cannot bind or listen (the message says why).
absl::StatusOr<std::pair<int, int>> ListenTcp(const std::string& host, int port);

}  // namespace kvcache

#endif  // KVCACHE_COMMON_TCP_LISTEN_H_
