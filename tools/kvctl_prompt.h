// A prompt named on kvctl's command line (--tokens and the key schema
// flags), hashed into its chain of block keys: what put, get and why share.
#ifndef KVCACHE_TOOLS_KVCTL_PROMPT_H_
#define KVCACHE_TOOLS_KVCTL_PROMPT_H_

#include <vector>

#include "absl/status/statusor.h"
#include "key/block_key.h"
#include "key/key_schema.h"

namespace kvcache {

struct Prompt {
  KeySchema schema;
  std::vector<BlockKey> keys;
};

// The --tokens file hashed with --model, --tokens_per_block and --kv_dtype.
// INVALID_ARGUMENT without --tokens, for a word that is not a token id, or
// for fewer tokens than one block; NOT_FOUND if the file cannot be read.
absl::StatusOr<Prompt> LoadPrompt();

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVCTL_PROMPT_H_
