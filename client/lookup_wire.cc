#include "client/lookup_wire.h"

#include <algorithm>
#include <cstring>

namespace kvcache {
namespace {

// Field tags of v1.LookupRequest: (field number << 3) | wire type.
constexpr char kNamespaceTag = (1 << 3) | 2;
constexpr char kKeysTag = (2 << 3) | 2;
constexpr char kPackedKeysTag = (3 << 3) | 2;
constexpr char kPackedKeySizeTag = (4 << 3) | 0;

void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void AppendBytesField(char tag, const void* data, size_t size, std::string* out) {
  out->push_back(tag);
  AppendVarint(size, out);
  out->append(static_cast<const char*>(data), size);
}

}  // namespace

bool PackableKeys(absl::Span<const BlockKey> keys) {
  return !keys.empty() && std::all_of(keys.begin(), keys.end(), [&](const BlockKey& k) {
    return k.size() == keys.front().size();
  });
}

void AppendPackedKeys(absl::Span<const BlockKey> keys, std::string* out) {
  const size_t key_size = keys.front().size();
  const size_t start = out->size();
  out->resize(start + keys.size() * key_size);
  char* next = out->data() + start;
  if (key_size == BlockKey::kMaxBytes) {
    // The usual size, as a constant: two vector moves a key, where a copy
    // of a size known only at run time became a slow `rep movs`.
    for (const BlockKey& k : keys) {
      std::memcpy(next, k.data(), BlockKey::kMaxBytes);
      next += BlockKey::kMaxBytes;
    }
  } else {
    for (const BlockKey& k : keys) {
      std::memcpy(next, k.data(), key_size);
      next += key_size;
    }
  }
}

void AppendLookupRequest(const std::string& ns, absl::Span<const BlockKey> keys, bool packed,
                         std::string* out) {
  // proto3 leaves empty and zero fields out.
  if (!ns.empty()) AppendBytesField(kNamespaceTag, ns.data(), ns.size(), out);
  if (!packed) {
    for (const BlockKey& k : keys) AppendBytesField(kKeysTag, k.data(), k.size(), out);
    return;
  }
  const size_t key_size = keys.front().size();
  out->push_back(kPackedKeysTag);
  AppendVarint(keys.size() * key_size, out);
  AppendPackedKeys(keys, out);
  out->push_back(kPackedKeySizeTag);
  AppendVarint(key_size, out);
}

absl::Status ReadLookupResponse(const v1::LookupResponse& response, size_t asked, bool packed,
                                LookupResult* result) {
  const int hits = static_cast<int>(response.hit_count());
  const bool well_formed =
      response.hit_count() <= asked &&
      (packed ? response.packed_sizes_size() == hits &&
                    response.packed_tiers().size() == response.hit_count() &&
                    std::all_of(response.packed_tiers().begin(), response.packed_tiers().end(),
                                [](char t) { return v1::Tier_IsValid(t); })
              : response.blocks_size() == hits);
  if (!well_formed) return absl::InternalError("daemon sent a malformed LookupResponse");
  result->hits += response.hit_count();
  result->sizes.reserve(result->sizes.size() + hits);
  result->tiers.reserve(result->tiers.size() + hits);
  for (int i = 0; i < hits; ++i) {
    result->sizes.push_back(packed ? response.packed_sizes(i) : response.blocks(i).size());
    result->tiers.push_back(packed ? static_cast<v1::Tier>(response.packed_tiers()[i])
                                   : response.blocks(i).tier());
  }
  return absl::OkStatus();
}

}  // namespace kvcache
