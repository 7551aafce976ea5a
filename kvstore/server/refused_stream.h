// Streaming calls the service refuses before reading or writing anything
// (no identity, a role that does not allow it): each finishes at once with
// the refusal and deletes itself when gRPC is done with it.
//
// Thread safety: gRPC drives each from one thread at a time.
#ifndef KVCACHE_KVSTORE_SERVER_REFUSED_STREAM_H_
#define KVCACHE_KVSTORE_SERVER_REFUSED_STREAM_H_

#include "grpcpp/grpcpp.h"

namespace kvcache {

class RefusedReadStream final : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  explicit RefusedReadStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

class RefusedWriteStream final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit RefusedWriteStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_REFUSED_STREAM_H_
