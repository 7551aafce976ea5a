// One block of a put while its bytes arrive: the first phase of the
// two-phase put. The bytes land in staging pages that no reader can see; the
// checksum is computed as they arrive; Commit() verifies size and checksum and
// only then hands the pages to the index.
//
// Pages are taken as the bytes arrive, never for bytes a client has only
// announced: a client that sends a header and then nothing holds no memory,
// and making room (which may evict cached blocks) happens only for bytes
// that are really here. A block whose bytes arrive but find no room fails
// with RESOURCE_EXHAUSTED and frees what it held.
//
// Thread safety: used by one thread at a time (one put stream).
#ifndef KVCACHE_KVSTORE_STORE_STAGED_BLOCK_H_
#define KVCACHE_KVSTORE_STORE_STAGED_BLOCK_H_

#include <cstdint>
#include <optional>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "key/checksum.h"
#include "kvstore/index/block_index.h"
#include "kvstore/store/block_store.h"
#include "kvstore/index/cached_block.h"
#include "kvstore/store/connection_share.h"

namespace kvcache {

class StagedBlock {
 public:
  // `meta` carries key, parent, size and the client's checksum. The parent
  // pin (if any) keeps the parent from being evicted while this block is
  // staged. `store` is not owned and outlives this: pages come from
  // store.AllocateEvicting, and store.staged_bytes() counts those held.
  // `share` (null: none) is the sending connection's: the pages held count
  // against it, and past it the block finds no room. Not owned; outlives
  // this.
  // `ns` is unset for a root block of a namespace the daemon does not know
  // yet: it is interned only once the block is verified (set_ns), so puts
  // that store nothing never use up namespace ids.
  StagedBlock(std::optional<NamespaceId> ns, BlockMeta meta, BlockStore& store,
              ConnectionShare* share, std::optional<BlockPin> parent_pin);
  StagedBlock(const StagedBlock&) = delete;
  StagedBlock& operator=(const StagedBlock&) = delete;
  ~StagedBlock();

  // Appends the next bytes, taking the pages they need first.
  // INVALID_ARGUMENT if they run past the declared size, RESOURCE_EXHAUSTED
  // if no room can be made or the connection's share is used up (nothing is
  // written then).
  absl::Status Append(absl::Span<const uint8_t> data);

  // Receives the next `n` bytes straight into the staging pages, page by
  // page, each page taken just before its bytes are read: read(dst, len)
  // must fill dst completely or return false. The checksum is updated as
  // each page fills. INVALID_ARGUMENT past the declared size,
  // RESOURCE_EXHAUSTED as for Append, UNAVAILABLE if read fails
  // (the block is then unusable).
  absl::Status ReceiveInto(uint64_t n, absl::FunctionRef<bool(uint8_t*, size_t)> read);

  bool complete() const { return received_ == meta_.size; }
  const PageRun& pages() const { return pages_; }
  uint64_t received() const { return received_; }
  // Bytes of arena pages this block holds now.
  uint64_t held_bytes() const { return pages_.size(); }
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
  // Takes pages until bytes [0, end) are covered. REQUIRES: end <= size.
  absl::Status CoverUpTo(uint64_t end);
  // Gives back the pages held, to the store's and the share's counts.
  void Uncount(uint64_t bytes);

  std::optional<NamespaceId> ns_;
  BlockMeta meta_;
  BlockStore& store_;
  ConnectionShare* const share_;
  PageRun pages_;
  std::optional<BlockPin> parent_pin_;
  ChecksumStream checksum_;
  uint64_t received_ = 0;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_STORE_STAGED_BLOCK_H_
