// The crash test's oracle: every prompt's chain of block keys and every
// block's bytes follow from a few numbers, so any reader can tell a right
// byte from a wrong one without remembering what was written.
//
// A block's bytes depend on its namespace as well as its key: a hit that
// crossed namespaces reads as wrong.
//
// Thread safety: plain functions.
#ifndef KVCACHE_TOOLS_CRASHTEST_ORACLE_H_
#define KVCACHE_TOOLS_CRASHTEST_ORACLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "key/block_key.h"
#include "key/key_schema.h"

namespace kvcache {

inline KeySchema CrashTestSchema() {
  KeySchema s;
  s.model_id = "crashtest";
  s.tokens_per_block = 4;
  return s;
}

// The chain of prompt `prompt`: prompts share their first three blocks with
// every 16th prompt (a system prompt), then have one to five of their own.
inline std::vector<BlockKey> CrashTestChain(uint32_t prompt) {
  const KeySchema s = CrashTestSchema();
  const uint32_t shared = 3, own = 1 + prompt % 5;
  std::vector<uint32_t> tokens;
  for (uint32_t i = 0; i < shared * s.tokens_per_block; ++i) tokens.push_back(prompt % 16 * 7919 + i);
  for (uint32_t i = 0; i < own * s.tokens_per_block; ++i) {
    tokens.push_back(1000000u + prompt * 104729u + i);
  }
  return *ChainKeys(s, tokens);
}

// The bytes block `key` of namespace `ns` must hold.
inline std::string CrashTestPayload(const std::string& ns, const BlockKey& key, size_t size) {
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (char c : ns) x = (x ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
  for (size_t i = 0; i < key.size(); ++i) x = (x ^ key.data()[i]) * 0x100000001b3ull;
  std::string out(size, '\0');
  for (size_t i = 0; i < size; i += 8) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    const uint64_t v = x * 0x2545f4914f6cdd1dull;
    for (size_t b = 0; b < 8 && i + b < size; ++b) out[i + b] = static_cast<char>(v >> (8 * b));
  }
  return out;
}

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_CRASHTEST_ORACLE_H_
