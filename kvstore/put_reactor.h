// The Put stream: a sequence of blocks, each a header message followed by
// data messages. Each block is staged (StagedBlock) and committed only when
// all of its bytes arrived and matched the checksum. Blocks that need not be
// stored (already cached, parent gone, no room) are read and discarded and
// reported per block. Protocol errors end the stream with a status; whatever
// was staged is freed with the reactor. Messages arrive raw and are parsed
// here, so one that does not parse ends the stream with INVALID_ARGUMENT
// (gRPC itself would report it as the client closing normally).
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
class PutReactor final : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  // `raw_response` is gRPC's, filled when the stream ends well.
  PutReactor(ServiceContext& service, std::string tenant, grpc::ByteBuffer* raw_response);

  void OnReadDone(bool ok) override;
  void OnDone() override { delete this; }

 private:
  absl::Status Handle(const v1::PutRequest& request);
  absl::Status BeginBlock(const v1::PutBlockHeader& header);
  absl::Status FinishBlockIfComplete();
  void Record(v1::PutOutcome outcome);
  // Frees what is staged and ends the call with `status` (OK: the response).
  void End(const absl::Status& status);

  ServiceContext& service_;
  const std::string tenant_;
  grpc::ByteBuffer* const raw_response_;  // owned by gRPC
  v1::PutResponse response_;
  grpc::ByteBuffer raw_request_;
  v1::PutRequest request_;
  uint64_t messages_ = 0;  // read so far, for error messages
  std::unique_ptr<StagedBlock> staged_;
  // Bytes still to read and drop for a block that is not being stored.
  uint64_t discard_remaining_ = 0;
  bool in_block_ = false;
  std::string block_namespace_;  // of the block being received
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_PUT_REACTOR_H_
