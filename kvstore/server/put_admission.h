// The first and last steps of storing one block, shared by both put paths
// (the gRPC Put stream and the bulk data port): admitting a block header
// (validate it, pin the parent, find room, stage), and committing the staged
// block once all of its bytes arrived.
#ifndef KVCACHE_KVSTORE_SERVER_PUT_ADMISSION_H_
#define KVCACHE_KVSTORE_SERVER_PUT_ADMISSION_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "kvcache/v1/kvcache.pb.h"
#include "kvstore/server/service_context.h"
#include "kvstore/store/staged_block.h"

namespace kvcache {

// Either `staged` (read the block's bytes into it; it takes arena pages only
// as they arrive), or no staging and an `outcome` that says why the bytes are
// to be read and dropped.
struct PutAdmission {
  std::unique_ptr<StagedBlock> staged;
  v1::PutOutcome outcome = v1::PUT_OUTCOME_UNSPECIFIED;
};

// INVALID_ARGUMENT for a bad header (empty or long key, own parent, size 0 or
// over the limit, bad namespace). Never adds a namespace. The staged block
// charges its pages to `share` (the sending connection's; null: none), which
// must outlive it.
absl::StatusOr<PutAdmission> AdmitPut(ServiceContext& service, const std::string& tenant,
                                      ConnectionShare* share, const v1::PutBlockHeader& header);

// A staged block that found no room for bytes that arrived
// (StagedBlock's RESOURCE_EXHAUSTED) is not an error of the stream: its
// outcome is PUT_NO_SPACE and the rest of its bytes are read and dropped.
inline bool IsNoRoom(const absl::Status& status) {
  return status.code() == absl::StatusCode::kResourceExhausted;
}

// Commits a staged block of (tenant, ns) whose bytes all arrived; counts it
// if stored. INVALID_ARGUMENT if bytes are missing, DATA_LOSS on a checksum
// mismatch, RESOURCE_EXHAUSTED if the block would add a namespace past the
// table's limit. A new namespace is interned here, after verification.
absl::StatusOr<v1::PutOutcome> CommitPut(ServiceContext& service, const std::string& tenant,
                                         const std::string& ns, StagedBlock& staged);

// All three steps for a block whose bytes are already in memory the client
// may still write (a same-host connection's staging, kPutStaged): admit,
// copy into arena pages hashing the copy, commit. Errors as AdmitPut and
// CommitPut; no room is PUT_NO_SPACE; a rejection is counted.
absl::StatusOr<v1::PutOutcome> PutStagedBytes(ServiceContext& service, const std::string& tenant,
                                              ConnectionShare* share,
                                              const v1::PutBlockHeader& header,
                                              absl::Span<const uint8_t> bytes);

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_PUT_ADMISSION_H_
