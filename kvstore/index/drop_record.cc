#include "kvstore/index/drop_record.h"

namespace kvcache {

void DropRecord::Add(NamespaceId ns, const BlockKey& key, MissReason reason,
                     int64_t unix_micros) {
  if (capacity_ == 0) return;
  const Where where{ns, key};
  MutexLock lock(&mu_);
  if (auto it = slot_of_.find(where); it != slot_of_.end()) ring_[it->second].live = false;
  if (ring_.size() < capacity_) {
    ring_.push_back({});
  } else if (Slot& oldest = ring_[next_]; oldest.live) {
    slot_of_.erase(oldest.where);
  }
  ring_[next_] = Slot{where, Drop{reason, unix_micros}, true};
  slot_of_[where] = next_;
  next_ = (next_ + 1) % capacity_;
}

std::optional<Drop> DropRecord::Find(NamespaceId ns, const BlockKey& key) const {
  MutexLock lock(&mu_);
  auto it = slot_of_.find(Where{ns, key});
  if (it == slot_of_.end()) return std::nullopt;
  return ring_[it->second].drop;
}

size_t DropRecord::size() const {
  MutexLock lock(&mu_);
  return slot_of_.size();
}

}  // namespace kvcache
