// The load the crash test and the soak put on a daemon: look a prompt's
// chain up, fetch what hit and check every byte against the oracle, put
// what missed. Shared so both check hits the same way.
//
// Thread safety: OracleCounters may be shared; one Client per thread.
#ifndef KVCACHE_TOOLS_CRASHTEST_ORACLE_LOAD_H_
#define KVCACHE_TOOLS_CRASHTEST_ORACLE_LOAD_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "client/client.h"

namespace kvcache {

inline const char* const kOracleNamespaces[] = {"crash-a", "crash-b"};

struct OracleCounters {
  std::atomic<uint64_t> lookups{0}, verified{0}, wrong{0}, put{0};
};

// Looks up prompt `prompt` in `ns`, fetches what hit and checks every byte
// against the oracle; with `put_rest`, puts the blocks that missed. Calls
// that fail (the daemon died, say) count nothing.
void ReadCheckAndFill(Client& client, const std::string& ns, uint32_t prompt,
                      uint64_t block_bytes, bool put_rest, OracleCounters& counters);

// A client of `address` that takes one path: 0 same-host, 1 the data port,
// 2 gRPC.
ClientOptions OracleClientOptions(const std::string& address, int path);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_CRASHTEST_ORACLE_LOAD_H_
