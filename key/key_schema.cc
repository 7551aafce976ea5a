#include "key/key_schema.h"

#include <openssl/sha.h>

#include "absl/base/internal/endian.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace kvcache {
namespace {

// Field tags of the serialized schema. Never renumber; add new tags.
enum SchemaTag : uint16_t {
  kModelId = 1,
  kWeightsRevision = 2,
  kTokenizer = 3,
  kKvDtype = 4,
  kLayout = 5,
  kTokensPerBlock = 6,
  kTpRank = 7,
  kTpSize = 8,
  kPpRank = 9,
  kPpSize = 10,
  kGeometryIndependent = 11,
  kLoraId = 12,
  kLoraVersion = 13,
  kExtraKey = 14,
};

constexpr char kMagic[] = "kvcache-key-schema";

void AppendU16(std::string& out, uint16_t v) {
  char b[2];
  absl::little_endian::Store16(b, v);
  out.append(b, 2);
}

void AppendU32(std::string& out, uint32_t v) {
  char b[4];
  absl::little_endian::Store32(b, v);
  out.append(b, 4);
}

void AppendField(std::string& out, SchemaTag tag, absl::string_view value) {
  AppendU16(out, tag);
  AppendU32(out, static_cast<uint32_t>(value.size()));
  out.append(value.data(), value.size());
}

void AppendU32Field(std::string& out, SchemaTag tag, uint32_t value) {
  char b[4];
  absl::little_endian::Store32(b, value);
  AppendField(out, tag, absl::string_view(b, 4));
}

BlockKey Sha256Key(absl::string_view bytes) {
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), digest);
  return *BlockKey::FromBytes(absl::string_view(reinterpret_cast<char*>(digest), sizeof(digest)));
}

}  // namespace

absl::Status KeySchema::Validate() const {
  if (model_id.empty()) return absl::InvalidArgumentError("key schema: model_id is empty");
  if (tokens_per_block == 0) {
    return absl::InvalidArgumentError("key schema: tokens_per_block must be > 0");
  }
  if (!geometry_independent) {
    if (tp_size == 0 || tp_rank >= tp_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("key schema: tp_rank ", tp_rank, " not below tp_size ", tp_size));
    }
    if (pp_size == 0 || pp_rank >= pp_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("key schema: pp_rank ", pp_rank, " not below pp_size ", pp_size));
    }
  }
  return absl::OkStatus();
}

std::string KeySchema::Serialize() const {
  std::string out(kMagic);
  AppendU32(out, kVersion);
  AppendField(out, kModelId, model_id);
  AppendField(out, kWeightsRevision, weights_revision);
  AppendField(out, kTokenizer, tokenizer);
  AppendField(out, kKvDtype, kv_dtype);
  AppendField(out, kLayout, layout);
  AppendU32Field(out, kTokensPerBlock, tokens_per_block);
  AppendU32Field(out, kGeometryIndependent, geometry_independent ? 1 : 0);
  if (!geometry_independent) {
    AppendU32Field(out, kTpRank, tp_rank);
    AppendU32Field(out, kTpSize, tp_size);
    AppendU32Field(out, kPpRank, pp_rank);
    AppendU32Field(out, kPpSize, pp_size);
  }
  AppendField(out, kLoraId, lora_id);
  AppendField(out, kLoraVersion, lora_version);
  for (const std::string& extra : extra_keys) AppendField(out, kExtraKey, extra);
  return out;
}

BlockKey KeySchema::SchemaKey() const { return Sha256Key(Serialize()); }

std::string KeySchema::NamespaceName() const {
  return absl::StrCat(model_id, "@", SchemaKey().ToHex().substr(0, 32));
}

BlockKey NextChainKey(const BlockKey& parent, absl::Span<const uint32_t> block_tokens) {
  std::string buf;
  buf.reserve(parent.size() + 4 * block_tokens.size());
  buf.append(parent.view().data(), parent.size());
  for (uint32_t t : block_tokens) AppendU32(buf, t);
  return Sha256Key(buf);
}

absl::StatusOr<std::vector<BlockKey>> ChainKeys(const KeySchema& schema,
                                                absl::Span<const uint32_t> tokens) {
  if (absl::Status s = schema.Validate(); !s.ok()) return s;
  const size_t n = schema.tokens_per_block;
  std::vector<BlockKey> keys;
  keys.reserve(tokens.size() / n);
  BlockKey prev = schema.SchemaKey();
  for (size_t start = 0; start + n <= tokens.size(); start += n) {
    prev = NextChainKey(prev, tokens.subspan(start, n));
    keys.push_back(prev);
  }
  return keys;
}

}  // namespace kvcache
