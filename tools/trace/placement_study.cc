#include "tools/trace/placement_study.h"

#include <algorithm>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "membership/rendezvous.h"
#include "xxhash.h"

namespace kvcache {
namespace {

// The key that places chain position i (i > 0): its own, or its segment's
// first block's (segment 0 starts at position 1: position 0 is the root,
// which every node holds).
const BlockKey& PlacementKey(const std::vector<BlockKey>& chain, size_t i, size_t segment) {
  const size_t start = std::max<size_t>(1, (i - 1) / segment * segment + 1);
  return chain[start];
}

double LargestOverMean(const std::vector<uint64_t>& counts) {
  uint64_t total = 0, largest = 0;
  for (uint64_t c : counts) {
    total += c;
    largest = std::max(largest, c);
  }
  return total == 0 ? 0 : largest / (static_cast<double>(total) / counts.size());
}

}  // namespace

PlacementFigures StudyPlacement(const std::vector<std::vector<BlockKey>>& chains, int nodes,
                                int segment_blocks, int replicas) {
  std::vector<std::string> names;
  for (int n = 0; n < nodes; ++n) names.push_back(absl::StrCat("node-", n, ":7000"));
  const Rendezvous placement(names);
  const size_t copies = std::min(std::max(replicas, 1), nodes);
  const size_t segment = std::max(segment_blocks, 1);

  absl::flat_hash_set<BlockKey> stored;
  std::vector<uint64_t> held(nodes, 0), reads(nodes, 0);
  uint64_t calls = 0, hit_blocks = 0;
  std::vector<uint64_t> kept(nodes, 0);  // hit blocks kept with node d down
  for (const std::vector<BlockKey>& chain : chains) {
    if (chain.empty()) continue;
    // Each position's replicas, best first; the root's start at the one its
    // second key picks.
    std::vector<std::vector<size_t>> ranked(chain.size());
    for (size_t i = 0; i < chain.size(); ++i) {
      if (i > 0) {
        ranked[i] = placement.Ranked(PlacementKey(chain, i, segment), copies);
        continue;
      }
      ranked[0] = placement.Ranked(chain[0], nodes);
      const uint64_t spread =
          chain.size() > 1 ? XXH3_64bits(chain[1].data(), chain[1].size()) : 0;
      std::rotate(ranked[0].begin(), ranked[0].begin() + spread % nodes, ranked[0].end());
    }
    std::vector<bool> asked(nodes, false);
    for (const auto& r : ranked) asked[r[0]] = true;
    calls += std::count(asked.begin(), asked.end(), true);

    size_t prefix = 0;
    while (prefix < chain.size() && stored.contains(chain[prefix])) ++prefix;
    hit_blocks += prefix;
    for (size_t i = 0; i < prefix; ++i) ++reads[ranked[i][0]];
    for (int dead = 0; dead < nodes; ++dead) {
      size_t alive = 0;  // the prefix still read with `dead` down
      while (alive < prefix &&
             std::any_of(ranked[alive].begin(), ranked[alive].end(),
                         [&](size_t n) { return static_cast<int>(n) != dead; })) {
        ++alive;
      }
      kept[dead] += alive;
    }
    for (size_t i = prefix; i < chain.size(); ++i) {
      if (!stored.insert(chain[i]).second) continue;
      for (size_t n : ranked[i]) ++held[n];
    }
  }

  PlacementFigures f;
  const size_t requests = std::count_if(chains.begin(), chains.end(),
                                        [](const auto& c) { return !c.empty(); });
  f.nodes_per_request = requests == 0 ? 0 : static_cast<double>(calls) / requests;
  f.largest_over_mean_copies = LargestOverMean(held);
  const uint64_t most_read = *std::max_element(reads.begin(), reads.end());
  f.hottest_read_share = hit_blocks == 0 ? 0 : static_cast<double>(most_read) / hit_blocks;
  uint64_t kept_total = 0;
  for (uint64_t k : kept) kept_total += k;
  f.kept_one_down =
      hit_blocks == 0 ? 1 : static_cast<double>(kept_total) / (static_cast<double>(hit_blocks) * nodes);
  return f;
}

}  // namespace kvcache
