// The Fetch stream. On start it validates the request and pins the leading
// run of requested blocks that are cached (stopping at the first miss, like
// Lookup); then it writes one chunk at a time. A chunk is a small encoded
// header plus slices that point into the pinned arena pages: the payload is
// never copied on the daemon, and each slice holds a pin until gRPC is done
// with it. When the client goes away the reactor finishes and its pins go.
// The pinned blocks count against the connection's share of the arena, and a
// reader that takes nothing for the stall limit is cut off (CANCELLED), so a
// client cannot hold pins by not reading.
#ifndef KVCACHE_KVSTORE_SERVER_FETCH_REACTOR_H_
#define KVCACHE_KVSTORE_SERVER_FETCH_REACTOR_H_

#include <vector>

#include "grpcpp/grpcpp.h"
#include "kvcache/v1/kvcache.grpc.pb.h"
#include "kvstore/server/fetch_plan.h"
#include "kvstore/server/service_context.h"
#include "kvstore/server/stall_watchdog.h"

namespace kvcache {

// Deletes itself when the RPC is done.
class FetchReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer>, public Stallable {
 public:
  // `context` is gRPC's, valid until OnDone; `share` is the connection's.
  FetchReactor(ServiceContext& service, std::string tenant, std::shared_ptr<ConnectionShare> share,
               grpc::CallbackServerContext* context, const grpc::ByteBuffer& request);

  void OnWriteDone(bool ok) override;
  void OnDone() override;
  // Cancels the call; gRPC then drops the writes in flight and their pins.
  void OnStalled() override;

 private:
  // Plans the fetch and starts writing, or finishes with the error.
  void Begin(const grpc::ByteBuffer& raw);
  absl::Status Start(const grpc::ByteBuffer& raw);
  void WriteNext();

  ServiceContext& service_;
  const absl::Time started_ = absl::Now();  // for the latency histogram
  const std::string tenant_;
  std::shared_ptr<ConnectionShare> share_;  // moved into charge_ once planned
  grpc::CallbackServerContext* const context_;
  ShareCharge charge_;  // held until OnDone: slices in flight still pin
  uint32_t chunk_bytes_ = 0;
  std::vector<FetchPlanItem> items_;
  size_t current_ = 0;  // item being written
  grpc::ByteBuffer out_;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_FETCH_REACTOR_H_
