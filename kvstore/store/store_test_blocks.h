// Numbered test blocks for BlockStore tests (block_store_test, gpu_tier_test):
// stored as a committed put leaves them, and read back as a fetch pins them.
#ifndef KVCACHE_KVSTORE_STORE_STORE_TEST_BLOCKS_H_
#define KVCACHE_KVSTORE_STORE_STORE_TEST_BLOCKS_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "key/checksum.h"
#include "gtest/gtest.h"
#include "kvstore/store/block_store.h"

namespace kvcache {

inline BlockKey TestKey(int i) { return *BlockKey::FromBytes("block-" + std::to_string(i)); }

// `size` random bytes, the same for the same `i`.
inline std::vector<uint8_t> TestPayload(int i, uint64_t size) {
  std::vector<uint8_t> p(size);
  std::mt19937_64 rng(i);
  for (auto& b : p) b = static_cast<uint8_t>(rng());
  return p;
}

// Stores `bytes` as block i (a child of block i-1 unless i is a root) in
// host pages, as a put's commit does; fails the test unless it is stored.
inline void StoreTestBlock(BlockStore& store, NamespaceId ns, int i, bool root,
                           const std::vector<uint8_t>& bytes) {
  absl::StatusOr<PageRun> pages = store.AllocateEvicting(bytes.size());
  ASSERT_TRUE(pages.ok()) << pages.status();
  pages->Write(0, bytes);
  BlockMeta meta;
  meta.key = TestKey(i);
  if (!root) meta.parent = TestKey(i - 1);
  meta.size = bytes.size();
  meta.checksum = BlockChecksum(bytes);
  ASSERT_EQ(store.index().Insert(ns, meta, *std::move(pages)), InsertOutcome::kStored);
}

// True if block i reads back as `want`; *source (if given) says from where.
inline bool ReadsBackAs(BlockStore& store, NamespaceId ns, int i, const std::vector<uint8_t>& want,
                        ReadSource* source = nullptr) {
  std::optional<BlockPin> pin = store.PinForRead(ns, TestKey(i), source);
  if (!pin.has_value()) return false;
  std::vector<uint8_t> back(pin->meta().size);
  pin->block().pages().Read(0, absl::MakeSpan(back));
  return back == want;
}

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_STORE_STORE_TEST_BLOCKS_H_
