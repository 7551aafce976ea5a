// A bounded record of the blocks the cache dropped or refused most recently,
// and why: what turns "miss" into "evicted by pressure at 12:03:07" for
// /metrics and `kvctl why`. Once full, each new drop overwrites the oldest,
// so memory stays at about 100 bytes per entry (6.5 MiB at the default
// 65,536); a key dropped again moves to the newest end.
//
// Thread safety: all methods may be called from any thread. Record is
// called under the index's shard locks, so it takes only its own lock.
#ifndef KVCACHE_KVSTORE_INDEX_DROP_RECORD_H_
#define KVCACHE_KVSTORE_INDEX_DROP_RECORD_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "common/mutex.h"
#include "key/block_key.h"
#include "kvstore/index/miss_reason.h"
#include "kvstore/index/namespace_table.h"

namespace kvcache {

struct Drop {
  MissReason reason = MissReason::kNeverStored;
  int64_t unix_micros = 0;
};

class DropRecord {
 public:
  // Keeps the last `capacity` drops; 0 keeps none.
  explicit DropRecord(size_t capacity) : capacity_(capacity) {}
  DropRecord(const DropRecord&) = delete;
  DropRecord& operator=(const DropRecord&) = delete;

  // Notes that `key` of namespace `ns` was dropped (or refused) for `reason`.
  void Add(NamespaceId ns, const BlockKey& key, MissReason reason, int64_t unix_micros)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The newest drop of the key still recorded, or nullopt.
  std::optional<Drop> Find(NamespaceId ns, const BlockKey& key) const ABSL_LOCKS_EXCLUDED(mu_);
  // Drops recorded now (at most the capacity).
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t capacity() const { return capacity_; }

 private:
  struct Where {
    NamespaceId ns;
    BlockKey key;
    friend bool operator==(const Where& a, const Where& b) {
      return a.ns == b.ns && a.key == b.key;
    }
    template <typename H>
    friend H AbslHashValue(H h, const Where& w) {
      return H::combine(std::move(h), w.ns, w.key);
    }
  };
  struct Slot {
    Where where;
    Drop drop;
    bool live = false;  // false once the key was recorded again in a newer slot
  };

  const size_t capacity_;
  mutable Mutex mu_;
  std::vector<Slot> ring_ ABSL_GUARDED_BY(mu_);  // grows to capacity_, then wraps
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;         // the slot the next drop takes
  absl::flat_hash_map<Where, size_t> slot_of_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_INDEX_DROP_RECORD_H_
