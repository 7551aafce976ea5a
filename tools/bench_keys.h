// The block keys kvbench's measurements use: a chain of `n` one-token
// blocks of model `model`, distinct for each `seed`.
#ifndef KVCACHE_TOOLS_BENCH_KEYS_H_
#define KVCACHE_TOOLS_BENCH_KEYS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "key/block_key.h"
#include "key/key_schema.h"

namespace kvcache {

inline std::vector<BlockKey> BenchChain(const std::string& model, uint32_t seed, size_t n) {
  KeySchema s;
  s.model_id = model;
  s.tokens_per_block = 1;
  std::vector<uint32_t> tokens(n);
  for (size_t i = 0; i < n; ++i) tokens[i] = seed * 7919u + static_cast<uint32_t>(i);
  return *ChainKeys(s, tokens);
}

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_BENCH_KEYS_H_
