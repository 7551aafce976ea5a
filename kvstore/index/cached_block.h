// A verified, immutable cached block (its metadata and its arena pages), and
// the pins readers hold on one.
//
// Thread safety: CachedBlock is immutable after construction; BlockPin is a
// value type whose copies may live on any thread.
#ifndef KVCACHE_KVSTORE_INDEX_CACHED_BLOCK_H_
#define KVCACHE_KVSTORE_INDEX_CACHED_BLOCK_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "key/block_key.h"
#include "offload/host_arena.h"

namespace kvcache {

struct BlockMeta {
  BlockKey key;
  BlockKey parent;  // empty for a root block
  BlockKey root;    // the chain's first cached block (itself for a root)
  uint32_t depth = 1;
  uint64_t size = 0;
  uint64_t checksum = 0;  // XXH3-64 of the payload, verified on put
  int64_t created_micros = 0;
  bool evict_first = false;  // the client's hint; see PutBlockHeader
};

class CachedBlock {
 public:
  CachedBlock(BlockMeta meta, PageRun pages) : meta_(std::move(meta)), pages_(std::move(pages)) {}
  const BlockMeta& meta() const { return meta_; }
  const PageRun& pages() const { return pages_; }
  // False for the index's record of a block held only on NVMe.
  bool on_host() const { return pages_.page_count() > 0; }

 private:
  const BlockMeta meta_;
  const PageRun pages_;
};

// A reader's hold on a block: while any copy lives, the block's pages are not
// freed (even if the block is evicted meanwhile), and its size counts in
// `pinned_bytes`. Copies share one hold.
class BlockPin {
 public:
  BlockPin() = default;
  // `pinned_bytes` is not owned and must outlive every copy.
  BlockPin(std::shared_ptr<const CachedBlock> block, std::atomic<uint64_t>* pinned_bytes)
      : hold_(std::make_shared<Hold>(std::move(block), pinned_bytes)) {}

  explicit operator bool() const { return hold_ != nullptr; }
  const CachedBlock& block() const { return *hold_->block; }
  const BlockMeta& meta() const { return hold_->block->meta(); }

 private:
  struct Hold {
    Hold(std::shared_ptr<const CachedBlock> b, std::atomic<uint64_t>* counter)
        : block(std::move(b)), pinned_bytes(counter) {
      pinned_bytes->fetch_add(block->meta().size, std::memory_order_relaxed);
    }
    ~Hold() { pinned_bytes->fetch_sub(block->meta().size, std::memory_order_relaxed); }
    std::shared_ptr<const CachedBlock> block;
    std::atomic<uint64_t>* pinned_bytes;
  };
  std::shared_ptr<const Hold> hold_;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_INDEX_CACHED_BLOCK_H_
