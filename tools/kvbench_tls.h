// `kvbench tls`: what TLS costs the bulk path. Fetch of 2 MiB blocks over the
// data port inside TLS 1.3 (with a token), next to the same over plaintext,
// gRPC over TLS, and Redis GET over TLS (redis-server --tls-port) of a value
// of the same size, at 1 and 4 connections, alternating in each round.
#ifndef KVCACHE_TOOLS_KVBENCH_TLS_H_
#define KVCACHE_TOOLS_KVBENCH_TLS_H_

#include <string>

namespace kvcache {

// Returns the process exit status. `runs` rounds of `seconds` per figure;
// figures are medians. `kvstored` and `redis_server` are the binaries.
int RunTlsBench(const std::string& kvstored, const std::string& redis_server, int runs,
                double seconds, bool json);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVBENCH_TLS_H_
