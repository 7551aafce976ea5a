// Deterministic test chains: keys from the real key schema, payloads derived
// from the key, so any reader can tell a wrong byte from a right one.
#ifndef KVCACHE_TESTS_TEST_BLOCKS_H_
#define KVCACHE_TESTS_TEST_BLOCKS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "key/key_schema.h"

namespace kvcache {

// Client options for tests: a deadline long enough for sanitizer builds,
// which run several times slower.
inline ClientOptions TestClientOptions(const std::string& address) {
  ClientOptions options;
  options.address = address;
  options.deadline = absl::Seconds(60);
  return options;
}

inline KeySchema TestSchema() {
  KeySchema s;
  s.model_id = "test-model";
  s.tokens_per_block = 4;
  return s;
}

// Payload of `size` bytes that depends on every byte of the key.
inline std::string PayloadFor(const BlockKey& key, size_t size) {
  std::string out(size, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < key.size(); ++i) x = (x ^ key.data()[i]) * 0x100000001b3ull;
  for (size_t i = 0; i < size; ++i) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    out[i] = static_cast<char>((x * 0x2545f4914f6cdd1dull) >> 56);
  }
  return out;
}

// `blocks` chain keys of a prompt whose tokens start at `seed`.
inline std::vector<BlockKey> TestChain(uint32_t seed, size_t blocks) {
  KeySchema s = TestSchema();
  std::vector<uint32_t> tokens(blocks * s.tokens_per_block);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = seed * 1000003u + static_cast<uint32_t>(i);
  return *ChainKeys(s, tokens);
}

inline std::vector<PutBlock> TestPayloads(const std::vector<BlockKey>& chain, size_t size) {
  std::vector<PutBlock> out;
  for (const BlockKey& k : chain) out.push_back({k, PayloadFor(k, size)});
  return out;
}

// The three ways a client reaches a daemon's bytes, for tests that try each.
struct FetchPath {
  const char* name;
  bool local, data_port;
};
inline constexpr FetchPath kFetchPaths[] = {
    {"same-host", true, true}, {"data port", false, true}, {"gRPC", false, false}};

// A client of the daemon at `address` that uses only `path`.
inline absl::StatusOr<std::unique_ptr<Client>> ClientThrough(const std::string& address,
                                                             const FetchPath& path) {
  ClientOptions options = TestClientOptions(address);
  options.use_local_path = path.local;
  options.use_data_port = path.data_port;
  return Client::Create(options);
}

// Fetches the chain's cached prefix through `client` (a Client, a
// ClusterClient: anything with their Fetch) into fresh buffers of `size`
// bytes, and adds each fetched block that is not PayloadFor its key to
// *wrong.
template <typename AnyClient>
FetchResult FetchChecked(AnyClient& client, const std::string& ns,
                         const std::vector<BlockKey>& chain, size_t size, uint64_t* wrong) {
  std::vector<std::string> bufs(chain.size(), std::string(size, '\0'));
  std::vector<FetchTarget> targets;
  for (size_t i = 0; i < chain.size(); ++i) {
    targets.push_back({chain[i], absl::MakeSpan(reinterpret_cast<uint8_t*>(bufs[i].data()), size)});
  }
  FetchResult got = client.Fetch(ns, targets);
  for (size_t i = 0; i < got.blocks; ++i) {
    if (bufs[i] != PayloadFor(chain[i], size)) ++*wrong;
  }
  return got;
}

// Polls Stats until `done(stats)` holds, for at most 10 s; returns the last
// Stats seen.
template <typename Pred>
v1::StatsResponse AwaitStats(v1::KvCache::Stub& stub, Pred done) {
  v1::StatsResponse stats;
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  do {
    grpc::ClientContext ctx;
    if (!stub.Stats(&ctx, {}, &stats).ok()) break;
    if (done(stats)) break;
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < give_up);
  return stats;
}

// Waits until the daemon holds no pinned and no staged bytes and no same-host
// lease (gRPC may take a moment to release the last slices of a cancelled
// call).
inline v1::StatsResponse AwaitNothingPinnedOrStaged(v1::KvCache::Stub& stub) {
  return AwaitStats(stub, [](const v1::StatsResponse& s) {
    return s.pinned_bytes() == 0 && s.staged_bytes() == 0 && s.leases_held() == 0;
  });
}

}  // namespace kvcache

#endif  // KVCACHE_TESTS_TEST_BLOCKS_H_
