// Protobuf's own log lines, rate-limited. Protobuf logs an ERROR line for
// every message it fails to parse because a string field is not UTF-8, so
// without a limit any client could fill the daemon's log at will. With the
// limit, at most one protobuf line is written per interval, followed later
// by a count of the lines left out.
//
// Thread safety: the handler may be called from any thread.
#ifndef KVCACHE_KVSTORE_SERVER_PROTOBUF_LOG_LIMIT_H_
#define KVCACHE_KVSTORE_SERVER_PROTOBUF_LOG_LIMIT_H_

#include <cstdint>

#include "absl/time/time.h"

namespace kvcache {

// Installs the limit for the whole process (protobuf has one handler).
void LimitProtobufLogging(absl::Duration interval);

// Lines protobuf logged since start, written or not (for tests and Stats).
uint64_t ProtobufLogLines();

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_PROTOBUF_LOG_LIMIT_H_
