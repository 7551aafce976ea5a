// The Put stream: a sequence of blocks, each a header message followed by
// data messages. Each block is staged (StagedBlock) and committed only when
// all of its bytes arrived and matched the checksum. Blocks that need not be
// stored (already cached, parent gone, no room) are read and discarded and
// reported per block. Protocol errors end the stream with a status; whatever
// was staged is freed with the reactor.
#ifndef KVCACHE_KVSTORE_PUT_REACTOR_H_
#define KVCACHE_KVSTORE_PUT_REACTOR_H_

#include <memory>

#include "grpcpp/grpcpp.h"
#include "kvcache/v1/kvcache.grpc.pb.h"
#include "kvstore/service_context.h"
#include "kvstore/staged_block.h"

namespace kvcache {

// Deletes itself when the RPC is done. Reactions never block: they copy
// bytes into arena pages and update the in-memory index.
class PutReactor final : public grpc::ServerReadReactor<v1::PutRequest> {
 public:
  PutReactor(ServiceContext& service, std::string tenant, v1::PutResponse* response);

  void OnReadDone(bool ok) override;
  void OnDone() override { delete this; }

 private:
  absl::Status Handle(const v1::PutRequest& request);
  absl::Status BeginBlock(const v1::PutBlockHeader& header);
  absl::Status FinishBlockIfComplete();
  void Record(v1::PutOutcome outcome);

  ServiceContext& service_;
  const std::string tenant_;
  v1::PutResponse* const response_;  // owned by gRPC
  v1::PutRequest request_;
  std::unique_ptr<StagedBlock> staged_;
  // Bytes still to read and drop for a block that is not being stored.
  uint64_t discard_remaining_ = 0;
  bool in_block_ = false;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_PUT_REACTOR_H_
