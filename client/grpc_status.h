// What the client's gRPC calls share: a grpc::Status as an absl::Status,
// and a call's deadline from now.
#ifndef KVCACHE_CLIENT_GRPC_STATUS_H_
#define KVCACHE_CLIENT_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace kvcache {

inline absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

inline void SetDeadline(grpc::ClientContext& ctx, absl::Duration deadline) {
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
}

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_GRPC_STATUS_H_
