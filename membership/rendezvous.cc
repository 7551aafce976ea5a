#include "membership/rendezvous.h"

#include <xxhash.h>

#include <algorithm>
#include <functional>
#include <utility>

namespace kvcache {

Rendezvous::Rendezvous(std::vector<std::string> nodes) : nodes_(std::move(nodes)) {
  for (const std::string& n : nodes_) seeds_.push_back(XXH3_64bits(n.data(), n.size()));
}

size_t Rendezvous::Owner(const BlockKey& key, const std::vector<bool>& up) const {
  size_t best = SIZE_MAX;
  uint64_t best_weight = 0;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!up.empty() && !up[i]) continue;
    const uint64_t w = XXH3_64bits_withSeed(key.data(), key.size(), seeds_[i]);
    if (best == SIZE_MAX || w > best_weight) {
      best = i;
      best_weight = w;
    }
  }
  return best;
}

std::vector<size_t> Rendezvous::Ranked(const BlockKey& key, size_t count,
                                       const std::vector<bool>& up) const {
  std::vector<std::pair<uint64_t, size_t>> weights;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!up.empty() && !up[i]) continue;
    weights.push_back({XXH3_64bits_withSeed(key.data(), key.size(), seeds_[i]), i});
  }
  std::sort(weights.begin(), weights.end(), std::greater<>());
  std::vector<size_t> out;
  for (size_t i = 0; i < weights.size() && i < count; ++i) out.push_back(weights[i].second);
  return out;
}

}  // namespace kvcache
