// One block of a put while its bytes arrive: the first phase of the
// two-phase put. The bytes land in staging pages that no reader can see; the
// checksum is computed as they arrive; Commit() verifies size and checksum and
// only then hands the pages to the index.
//
// Thread safety: used by one thread at a time (one put stream).
#ifndef KVCACHE_KVSTORE_STAGED_BLOCK_H_
#define KVCACHE_KVSTORE_STAGED_BLOCK_H_

#include <atomic>
#include <cstdint>
#include <optional>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/key/checksum.h"
#include "kvstore/block_index.h"
#include "kvstore/cached_block.h"

namespace kvcache {

class StagedBlock {
 public:
  // `meta` carries key, parent, size and the client's checksum. The parent
  // pin (if any) keeps the parent from being evicted while this block is
  // staged. `staged_bytes` is not owned; counts meta.size while this lives.
  // `ns` is unset for a root block of a namespace the daemon does not know
  // yet: it is interned only once the block is verified (set_ns), so puts
  // that store nothing never use up namespace ids.
  StagedBlock(std::optional<NamespaceId> ns, BlockMeta meta, PageRun pages,
              std::optional<BlockPin> parent_pin, std::atomic<uint64_t>* staged_bytes);
  StagedBlock(const StagedBlock&) = delete;
  StagedBlock& operator=(const StagedBlock&) = delete;
  ~StagedBlock();

  // Appends the next bytes. INVALID_ARGUMENT if they run past the declared
  // size (nothing is written then).
  absl::Status Append(absl::Span<const uint8_t> data);

  // Receives the next `n` bytes straight into the staging pages, page by
  // page: read(dst, len) must fill dst completely or return false. The
  // checksum is updated as each page fills. INVALID_ARGUMENT past the declared
  // size, UNAVAILABLE if read fails (the block is then unusable).
  absl::Status ReceiveInto(uint64_t n, absl::FunctionRef<bool(uint8_t*, size_t)> read);

  bool complete() const { return received_ == meta_.size; }
  const PageRun& pages() const { return pages_; }
  uint64_t received() const { return received_; }
  const BlockMeta& meta() const { return meta_; }
  const std::optional<NamespaceId>& ns() const { return ns_; }
  void set_ns(NamespaceId ns) { ns_ = ns; }

  // INVALID_ARGUMENT if bytes are missing, DATA_LOSS if the checksum does
  // not match.
  absl::Status Verify() const;

  // Second phase: Verify(), then the index's outcome. Call once.
  // REQUIRES: ns() is set.
  absl::StatusOr<InsertOutcome> Commit(BlockIndex& index);

 private:
  std::optional<NamespaceId> ns_;
  BlockMeta meta_;
  PageRun pages_;
  std::optional<BlockPin> parent_pin_;
  std::atomic<uint64_t>* const staged_bytes_;  // not owned
  ChecksumStream checksum_;
  uint64_t received_ = 0;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_STAGED_BLOCK_H_
