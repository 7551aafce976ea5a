// An intrusive list of entries in recency order, coldest first: how the
// block index keeps its leaf and residency orders with nothing to allocate,
// free or rebalance when a block is used (the std::set it replaces erased
// and re-inserted a red-black node per touched key, which was half of the
// daemon's time in a gRPC Lookup).
//
// An entry type T has a `uint64_t tick` (larger is newer) and one
// RecencyLinks<T> member per list it can be in at one time; lists that
// never hold the same entry at once may share a member. The list does not
// own its entries, and an entry must be removed before it is destroyed.
//
// Order: the list is sorted by tick when every entry comes in by
// PushNewest (its tick at least every other's) or by Place at a spot
// within kMaxPlaceSteps of either end. An entry whose spot is deeper than
// that is put kMaxPlaceSteps from the cold end, so it counts as colder than
// it is: it is evicted sooner than exact LRU would, and nothing else moves.
// That is what keeps every change O(1) under the shard lock; it happens
// only to a block that becomes a leaf or changes tier with a tick from the
// middle of its new list (DESIGN.md, "Index").
//
// Thread safety: none; the owner's lock guards the list and the links.
#ifndef KVCACHE_KVSTORE_INDEX_RECENCY_LIST_H_
#define KVCACHE_KVSTORE_INDEX_RECENCY_LIST_H_

#include <cstddef>
#include <cstdint>

namespace kvcache {

template <typename T>
struct RecencyLinks {
  T* older = nullptr;
  T* newer = nullptr;
  bool linked = false;
};

template <typename T>
class RecencyList {
 public:
  using Links = RecencyLinks<T> T::*;
  static constexpr int kMaxPlaceSteps = 64;

  // `links`: the member of T this list threads through.
  explicit RecencyList(Links links) : links_(links) {}
  RecencyList(const RecencyList&) = delete;
  RecencyList& operator=(const RecencyList&) = delete;

  // The coldest entry, then each next newer one; null past the end.
  T* coldest() const { return coldest_; }
  T* newest() const { return newest_; }
  T* Newer(const T* e) const { return (e->*links_).newer; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Whether `e` is threaded through this list's member (in this list or in
  // another that shares the member).
  bool Linked(const T& e) const { return (e.*links_).linked; }

  // Appends `e` at the newest end. REQUIRES: e is not linked; its tick is
  // at least that of every entry in the list.
  void PushNewest(T* e) { InsertBefore(e, nullptr); }

  // Inserts `e` (not linked) at its tick's place, looking at most
  // kMaxPlaceSteps entries in from each end (see the file comment).
  void Place(T* e) {
    if (newest_ == nullptr || newest_->tick <= e->tick) return InsertBefore(e, nullptr);
    T* from_new = newest_;
    for (int i = 0; i < kMaxPlaceSteps && from_new != nullptr; ++i) {
      T* older = (from_new->*links_).older;
      if (older == nullptr || older->tick <= e->tick) return InsertBefore(e, from_new);
      from_new = older;
    }
    T* from_cold = coldest_;
    for (int i = 0; i < kMaxPlaceSteps && from_cold != nullptr; ++i) {
      if (from_cold->tick > e->tick) break;
      from_cold = (from_cold->*links_).newer;
    }
    InsertBefore(e, from_cold);
  }

  // Moves `e` (in this list) to the newest end. REQUIRES: as PushNewest.
  void MoveToNewest(T* e) {
    if (newest_ == e) return;
    Remove(e);
    InsertBefore(e, nullptr);
  }

  // Takes `e` out. REQUIRES: e is in this list.
  void Remove(T* e) {
    RecencyLinks<T>& l = e->*links_;
    (l.older != nullptr ? (l.older->*links_).newer : coldest_) = l.newer;
    (l.newer != nullptr ? (l.newer->*links_).older : newest_) = l.older;
    l = RecencyLinks<T>();
    --size_;
  }

 private:
  // Links `e` just older than `next` (null: at the newest end).
  void InsertBefore(T* e, T* next) {
    RecencyLinks<T>& l = e->*links_;
    l.linked = true;
    l.newer = next;
    l.older = next != nullptr ? (next->*links_).older : newest_;
    (l.older != nullptr ? (l.older->*links_).newer : coldest_) = e;
    (next != nullptr ? (next->*links_).older : newest_) = e;
    ++size_;
  }

  const Links links_;
  T* coldest_ = nullptr;
  T* newest_ = nullptr;
  size_t size_ = 0;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_INDEX_RECENCY_LIST_H_
