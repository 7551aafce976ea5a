// Requests parsed and replies serialized by the service itself, not by gRPC.
//
// Every KvCache method is registered raw (ByteBuffer in, ByteBuffer out):
// when gRPC parses a request and fails, it answers UNIMPLEMENTED with no
// message (unary calls) or reports a normal end of stream (Put), so a
// malformed request would look like a missing method or a clean close. Here
// a request that does not parse (bad wire bytes, or a string field that is
// not UTF-8) is INVALID_ARGUMENT naming the message.
//
// Thread safety: free functions over their arguments.
#ifndef KVCACHE_KVSTORE_SERVER_RAW_MESSAGE_H_
#define KVCACHE_KVSTORE_SERVER_RAW_MESSAGE_H_

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"

namespace kvcache {

// Parses `raw` into `message` (left unchanged in `raw`).
template <typename M>
absl::Status ParseRaw(const grpc::ByteBuffer& raw, M* message) {
  grpc::ByteBuffer copy(raw);  // a reference to the same slices, not a copy of bytes
  if (!grpc::SerializationTraits<M>::Deserialize(&copy, message).ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed ", M::descriptor()->name(),
                     ": not a valid message (bad wire bytes, or a string that is not UTF-8)"));
  }
  return absl::OkStatus();
}

template <typename M>
absl::Status SerializeRaw(const M& message, grpc::ByteBuffer* raw) {
  bool own = false;
  if (!grpc::SerializationTraits<M>::Serialize(message, raw, &own).ok()) {
    return absl::InternalError(absl::StrCat("cannot serialize ", M::descriptor()->name()));
  }
  return absl::OkStatus();
}

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_RAW_MESSAGE_H_
