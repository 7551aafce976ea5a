// Rendezvous (highest random weight) placement of block keys on nodes: a key
// belongs to the node whose hash with it is highest. Every client computes
// the same answer from the member list alone, and a node joining or leaving
// moves only the keys it wins or held (about 1/N of them).
//
// Thread safety: immutable after construction.
#ifndef KVCACHE_MEMBERSHIP_RENDEZVOUS_H_
#define KVCACHE_MEMBERSHIP_RENDEZVOUS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "key/block_key.h"

namespace kvcache {

class Rendezvous {
 public:
  // `nodes` are stable node ids (their addresses); order does not matter.
  explicit Rendezvous(std::vector<std::string> nodes);

  size_t size() const { return nodes_.size(); }
  const std::string& node(size_t i) const { return nodes_[i]; }

  // The index of the node that owns `key`, skipping nodes with up[i] false
  // (then the key goes to its next-highest node). SIZE_MAX if none is up or
  // there are no nodes. `up` may be empty: every node is up.
  size_t Owner(const BlockKey& key, const std::vector<bool>& up = {}) const;
  // The `count` highest nodes for `key` (fewer if fewer are up), best first.
  std::vector<size_t> Ranked(const BlockKey& key, size_t count,
                             const std::vector<bool>& up = {}) const;

 private:
  std::vector<std::string> nodes_;
  std::vector<uint64_t> seeds_;  // a hash of each node's id
};

}  // namespace kvcache

#endif  // KVCACHE_MEMBERSHIP_RENDEZVOUS_H_
