#include "tools/trace/prefix_sim.h"

#include <limits>
#include <list>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace kvcache {
namespace {

constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

// Leading run of `ids` for which contains(id) holds.
template <typename Contains>
uint64_t LeadingHits(const std::vector<uint64_t>& ids, Contains contains) {
  uint64_t n = 0;
  while (n < ids.size() && contains(ids[n])) ++n;
  return n;
}

// next[r][i]: index of the next request after r whose chain holds
// trace[r].hash_ids[i], or kNever.
std::vector<std::vector<uint64_t>> NextUses(const std::vector<TraceRequest>& trace) {
  std::vector<std::vector<uint64_t>> next(trace.size());
  absl::flat_hash_map<uint64_t, uint64_t> seen_at;  // id -> nearest later request
  for (size_t r = trace.size(); r-- > 0;) {
    const std::vector<uint64_t>& ids = trace[r].hash_ids;
    next[r].resize(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      auto it = seen_at.find(ids[i]);
      next[r][i] = it == seen_at.end() ? kNever : it->second;
    }
    for (uint64_t id : ids) seen_at[id] = r;
  }
  return next;
}

}  // namespace

HitCount SimulateLru(const std::vector<TraceRequest>& trace, uint64_t capacity_blocks) {
  HitCount count;
  std::list<uint64_t> order;  // front: most recent
  absl::flat_hash_map<uint64_t, std::list<uint64_t>::iterator> where;
  for (const TraceRequest& r : trace) {
    count.prompt_blocks += r.hash_ids.size();
    count.hit_blocks += LeadingHits(r.hash_ids, [&](uint64_t id) { return where.contains(id); });
    for (uint64_t id : r.hash_ids) {
      auto it = where.find(id);
      if (it != where.end()) {
        order.splice(order.begin(), order, it->second);
        continue;
      }
      if (where.size() >= capacity_blocks) {
        where.erase(order.back());
        order.pop_back();
      }
      order.push_front(id);
      where[id] = order.begin();
    }
  }
  return count;
}

HitCount SimulateBelady(const std::vector<TraceRequest>& trace, uint64_t capacity_blocks) {
  HitCount count;
  const std::vector<std::vector<uint64_t>> next = NextUses(trace);
  std::set<std::pair<uint64_t, uint64_t>> by_next_use;  // (next use, id); last is farthest
  absl::flat_hash_map<uint64_t, uint64_t> cached;      // id -> its next use
  for (size_t r = 0; r < trace.size(); ++r) {
    const std::vector<uint64_t>& ids = trace[r].hash_ids;
    count.prompt_blocks += ids.size();
    count.hit_blocks += LeadingHits(ids, [&](uint64_t id) { return cached.contains(id); });
    for (size_t i = 0; i < ids.size(); ++i) {
      const uint64_t id = ids[i], use = next[r][i];
      auto it = cached.find(id);
      if (it != cached.end()) {
        by_next_use.erase({it->second, id});
        it->second = use;
        by_next_use.insert({use, id});
        continue;
      }
      if (cached.size() >= capacity_blocks) {
        auto farthest = std::prev(by_next_use.end());
        if (farthest->first <= use) continue;  // the incoming block is needed last
        cached.erase(farthest->second);
        by_next_use.erase(farthest);
      }
      cached[id] = use;
      by_next_use.insert({use, id});
    }
  }
  return count;
}

}  // namespace kvcache
