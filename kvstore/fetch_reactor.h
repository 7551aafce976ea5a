// The Fetch stream. On start it validates the request and pins the leading
// run of requested blocks that are cached (stopping at the first miss, like
// Lookup); then it writes one chunk at a time. A chunk is a small encoded
// header plus slices that point into the pinned arena pages: the payload is
// never copied on the daemon, and each slice holds a pin until gRPC is done
// with it. When the client goes away the reactor finishes and its pins go.
#ifndef KVCACHE_KVSTORE_FETCH_REACTOR_H_
#define KVCACHE_KVSTORE_FETCH_REACTOR_H_

#include <vector>

#include "grpcpp/grpcpp.h"
#include "kvcache/v1/kvcache.grpc.pb.h"
#include "kvstore/fetch_plan.h"
#include "kvstore/service_context.h"

namespace kvcache {

// Deletes itself when the RPC is done.
class FetchReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  FetchReactor(ServiceContext& service, std::string tenant, const grpc::ByteBuffer& request);

  void OnWriteDone(bool ok) override;
  void OnDone() override { delete this; }

 private:
  // Plans the fetch and starts writing, or finishes with the error.
  void Begin(const grpc::ByteBuffer& raw);
  absl::Status Start(const grpc::ByteBuffer& raw);
  void WriteNext();

  ServiceContext& service_;
  const std::string tenant_;
  uint32_t chunk_bytes_ = 0;
  std::vector<FetchPlanItem> items_;
  size_t current_ = 0;  // item being written
  grpc::ByteBuffer out_;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_FETCH_REACTOR_H_
