#include "kvstore/block_store.h"

#include "absl/strings/str_cat.h"

namespace kvcache {

absl::StatusOr<std::unique_ptr<BlockStore>> BlockStore::Create(const Options& options) {
  absl::StatusOr<std::unique_ptr<HostArena>> arena = HostArena::Create(options.arena);
  if (!arena.ok()) return arena.status();
  return std::unique_ptr<BlockStore>(new BlockStore(std::move(*arena), options));
}

BlockStore::BlockStore(std::unique_ptr<HostArena> arena, const Options& options)
    : arena_(std::move(arena)),
      namespaces_(options.max_namespaces),
      index_(std::make_unique<BlockIndex>(options.index_shards, &pinned_bytes_)) {}

absl::StatusOr<PageRun> BlockStore::AllocateEvicting(uint64_t bytes) {
  if (bytes > arena_->capacity_bytes()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "a ", bytes, "-byte block cannot fit the ", arena_->capacity_bytes(), "-byte host tier"));
  }
  while (true) {
    absl::StatusOr<PageRun> pages = arena_->Allocate(bytes);
    if (pages.ok()) return pages;
    if (!index_->EvictOneLeaf().has_value()) return pages.status();
    evicted_blocks_.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace kvcache
