#include "tools/kvctl_prompt.h"

#include <fstream>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

ABSL_DECLARE_FLAG(std::string, tokens);
ABSL_DECLARE_FLAG(std::string, model);
ABSL_DECLARE_FLAG(int, tokens_per_block);
ABSL_DECLARE_FLAG(std::string, kv_dtype);

namespace kvcache {
namespace {

absl::StatusOr<std::vector<uint32_t>> ReadTokens(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("--tokens=FILE is required");
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::vector<uint32_t> tokens;
  std::string word;
  while (in >> word) {
    uint32_t t;
    if (!absl::SimpleAtoi(word, &t)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": '", word, "' is not a token id"));
    }
    tokens.push_back(t);
  }
  return tokens;
}

}  // namespace

absl::StatusOr<Prompt> LoadPrompt() {
  Prompt p;
  p.schema.model_id = absl::GetFlag(FLAGS_model);
  p.schema.tokens_per_block = absl::GetFlag(FLAGS_tokens_per_block);
  p.schema.kv_dtype = absl::GetFlag(FLAGS_kv_dtype);
  absl::StatusOr<std::vector<uint32_t>> tokens = ReadTokens(absl::GetFlag(FLAGS_tokens));
  if (!tokens.ok()) return tokens.status();
  absl::StatusOr<std::vector<BlockKey>> keys = ChainKeys(p.schema, *tokens);
  if (!keys.ok()) return keys.status();
  if (keys->empty()) {
    return absl::InvalidArgumentError(absl::StrCat("fewer than ", p.schema.tokens_per_block,
                                                   " tokens: no full block to cache"));
  }
  p.keys = std::move(*keys);
  return p;
}

}  // namespace kvcache
