// The Put stream: a sequence of blocks, each a header message followed by
// data messages. Each block is staged (StagedBlock) and committed only when
// all of its bytes arrived and matched the checksum. Blocks that need not be
// stored (already cached, parent gone, no room) are read and discarded and
// reported per block. Protocol errors end the stream with a status; whatever
// was staged is freed with the reactor. Messages arrive raw and are parsed
// here, so one that does not parse ends the stream with INVALID_ARGUMENT
// (gRPC itself would report it as the client closing normally).
//
// What a stream can hold is bounded: its staged pages count against its
// connection's share of the arena (connection_share.h), and a stream that
// sends nothing for the stall limit in the middle of a block is ended with
// DEADLINE_EXCEEDED and its staging freed (stall_watchdog.h).
#ifndef KVCACHE_KVSTORE_SERVER_PUT_REACTOR_H_
#define KVCACHE_KVSTORE_SERVER_PUT_REACTOR_H_

#include <memory>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"
#include "grpcpp/grpcpp.h"
#include "kvcache/v1/kvcache.grpc.pb.h"
#include "kvstore/store/connection_share.h"
#include "kvstore/server/service_context.h"
#include "kvstore/server/stall_watchdog.h"
#include "kvstore/store/staged_block.h"

namespace kvcache {

// Deletes itself when the RPC is done. Reactions never block: they copy
// bytes into arena pages and update the in-memory index. The watchdog may
// end the stream from its own thread; mu_ orders that with the reactions
// (gRPC never runs a reaction inline from Finish or StartRead, so holding it
// across them is safe).
class PutReactor final : public grpc::ServerReadReactor<grpc::ByteBuffer>, public Stallable {
 public:
  // `raw_response` is gRPC's, filled when the stream ends well. `share` is
  // the connection's.
  PutReactor(ServiceContext& service, std::string tenant, std::shared_ptr<ConnectionShare> share,
             grpc::ByteBuffer* raw_response);

  void OnReadDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnDone() override;
  void OnStalled() override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Status Handle(const v1::PutRequest& request) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status BeginBlock(const v1::PutBlockHeader& header) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stages data for the current block, or reads and drops it.
  absl::Status Receive(const std::string& data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status FinishBlockIfComplete() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Record(v1::PutOutcome outcome) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees what is staged and ends the call with `status` (OK: the response).
  void End(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ServiceContext& service_;
  const absl::Time started_ = absl::Now();  // for the latency histogram
  const std::string tenant_;
  const std::shared_ptr<ConnectionShare> share_;
  grpc::ByteBuffer* const raw_response_;  // owned by gRPC
  Mutex mu_;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  v1::PutResponse response_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer raw_request_;  // written by gRPC between StartRead and OnReadDone
  v1::PutRequest request_ ABSL_GUARDED_BY(mu_);
  uint64_t messages_ ABSL_GUARDED_BY(mu_) = 0;  // read so far, for error messages
  std::unique_ptr<StagedBlock> staged_ ABSL_GUARDED_BY(mu_);
  // Bytes still to read and drop for a block that is not being stored.
  uint64_t discard_remaining_ ABSL_GUARDED_BY(mu_) = 0;
  bool in_block_ ABSL_GUARDED_BY(mu_) = false;
  std::string block_namespace_ ABSL_GUARDED_BY(mu_);  // of the block being received
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_PUT_REACTOR_H_
