// The host tier as one object: the arena, the prefix-forest index over it,
// the namespace table, and the rule for making room (drop the least recently
// used unpinned leaf until the pages fit).
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_KVSTORE_BLOCK_STORE_H_
#define KVCACHE_KVSTORE_BLOCK_STORE_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "kvstore/block_index.h"
#include "kvstore/namespace_table.h"
#include "offload/host_arena.h"

namespace kvcache {

class BlockStore {
 public:
  struct Options {
    HostArena::Options arena;
    int index_shards = 16;
    size_t max_namespaces = 1 << 16;
  };

  // Errors from HostArena::Create.
  static absl::StatusOr<std::unique_ptr<BlockStore>> Create(const Options& options);

  // Pages for `bytes`, dropping unpinned leaves while too few are free.
  // RESOURCE_EXHAUSTED if the block can never fit or everything left is
  // pinned or being staged.
  absl::StatusOr<PageRun> AllocateEvicting(uint64_t bytes);

  HostArena& arena() { return *arena_; }
  BlockIndex& index() { return *index_; }
  NamespaceTable& namespaces() { return namespaces_; }

  // Bytes held by readers' pins / by unfinished puts.
  std::atomic<uint64_t>& pinned_bytes() { return pinned_bytes_; }
  std::atomic<uint64_t>& staged_bytes() { return staged_bytes_; }
  uint64_t evicted_blocks() const { return evicted_blocks_.load(std::memory_order_relaxed); }

 private:
  BlockStore(std::unique_ptr<HostArena> arena, const Options& options);

  std::atomic<uint64_t> pinned_bytes_{0};
  std::atomic<uint64_t> staged_bytes_{0};
  std::atomic<uint64_t> evicted_blocks_{0};
  // Declared after the counters: the index's pins count into pinned_bytes_.
  std::unique_ptr<HostArena> arena_;
  NamespaceTable namespaces_;
  std::unique_ptr<BlockIndex> index_;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_BLOCK_STORE_H_
