// The key schema: what a namespace is, and how prompts become block keys.
//
// A namespace pins down everything that makes two KV blocks interchangeable:
// model and weights revision, tokenizer, KV dtype, memory layout, tokens per
// block, parallel geometry (or a geometry-independent layout), LoRA adapter
// and extra keys (e.g. multimodal input hashes). Serialize() writes every
// field tagged and length-prefixed after a magic and a schema version, so no
// two different schemas can serialize alike.
//
//   k[-1] = SHA-256(Serialize())
//   k[i]  = SHA-256(k[i-1] || tokens of block i as little-endian uint32)
//
// There is no process seed: any client in any language that follows this
// computes the same keys (key/testdata/key_vectors.json proves it).
//
// Thread safety: a value type; const methods are safe from any thread.
#ifndef KVCACHE_KEY_KEY_SCHEMA_H_
#define KVCACHE_KEY_KEY_SCHEMA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "key/block_key.h"

namespace kvcache {

struct KeySchema {
  // Bumped whenever Serialize() changes; part of the serialized bytes.
  static constexpr uint32_t kVersion = 1;

  std::string model_id;          // required, e.g. "meta-llama/Llama-3.1-8B"
  std::string weights_revision;  // e.g. a commit hash
  std::string tokenizer;         // tokenizer id and revision
  std::string kv_dtype = "bf16";
  std::string layout = "nhd";    // engine's layout tag
  uint32_t tokens_per_block = 16;
  // When true the layout does not depend on tensor/pipeline sharding and the
  // four geometry fields are left out of the key.
  bool geometry_independent = false;
  uint32_t tp_rank = 0;
  uint32_t tp_size = 1;
  uint32_t pp_rank = 0;
  uint32_t pp_size = 1;
  std::string lora_id;
  std::string lora_version;
  std::vector<std::string> extra_keys;

  // OK, or INVALID_ARGUMENT naming the first bad field.
  absl::Status Validate() const;

  // The canonical bytes hashed into k[-1]. REQUIRES: Validate().ok().
  std::string Serialize() const;

  // k[-1]. REQUIRES: Validate().ok().
  BlockKey SchemaKey() const;

  // The namespace string used on the wire: "<model_id>@<32 hex digits of
  // k[-1]>". Readable in kvctl, and 128 bits of the schema hash keep
  // different schemas apart. REQUIRES: Validate().ok().
  std::string NamespaceName() const;
};

// Keys of the full blocks of `tokens` (a trailing partial block has no key).
// INVALID_ARGUMENT if the schema is invalid.
absl::StatusOr<std::vector<BlockKey>> ChainKeys(const KeySchema& schema,
                                                absl::Span<const uint32_t> tokens);

// One step of the chain: SHA-256(parent || tokens as little-endian uint32).
BlockKey NextChainKey(const BlockKey& parent, absl::Span<const uint32_t> block_tokens);

}  // namespace kvcache

#endif  // KVCACHE_KEY_KEY_SCHEMA_H_
