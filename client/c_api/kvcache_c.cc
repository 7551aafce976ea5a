#include "client/c_api/kvcache_c.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "client/client.h"
#include "key/block_key.h"
#include "key/key_schema.h"

struct kvc_client {
  std::unique_ptr<kvcache::Client> client;
};

namespace kvcache {
namespace {

constexpr int kAbiVersion = 1;

void WriteError(absl::string_view message, char* error, size_t error_len) {
  if (error == nullptr || error_len == 0) return;
  const size_t n = std::min(message.size(), error_len - 1);
  std::memcpy(error, message.data(), n);
  error[n] = '\0';
}

void ClearError(char* error, size_t error_len) {
  if (error != nullptr && error_len > 0) error[0] = '\0';
}

absl::StatusOr<std::vector<BlockKey>> KeysFrom(const uint8_t* keys, const uint32_t* key_lens,
                                               size_t count) {
  if (count > 0 && (keys == nullptr || key_lens == nullptr)) {
    return absl::InvalidArgumentError("keys or key_lens is NULL");
  }
  std::vector<BlockKey> out;
  out.reserve(count);
  size_t at = 0;
  for (size_t i = 0; i < count; ++i) {
    absl::StatusOr<BlockKey> key = BlockKey::FromBytes(
        absl::string_view(reinterpret_cast<const char*>(keys) + at, key_lens[i]));
    if (!key.ok()) return absl::InvalidArgumentError(absl::StrCat("key ", i, ": ", key.status().message()));
    out.push_back(*key);
    at += key_lens[i];
  }
  return out;
}

bool ParseBool(absl::string_view v, bool* out) {
  if (v == "1" || v == "true" || v == "True") return *out = true, true;
  if (v == "0" || v == "false" || v == "False") return *out = false, true;
  return false;
}

absl::Status ApplyOption(absl::string_view name, absl::string_view value, ClientOptions* o) {
  bool ok = true;
  if (name == "deadline_s") {
    double s = 0;
    ok = absl::SimpleAtod(value, &s) && s > 0;
    o->deadline = absl::Seconds(s);
  } else if (name == "use_local_path") {
    ok = ParseBool(value, &o->use_local_path);
  } else if (name == "use_direct_reads") {
    ok = ParseBool(value, &o->use_direct_reads);
  } else if (name == "use_direct_lookups") {
    ok = ParseBool(value, &o->use_direct_lookups);
  } else if (name == "use_data_port") {
    ok = ParseBool(value, &o->use_data_port);
  } else if (name == "verify_checksums") {
    ok = ParseBool(value, &o->verify_checksums);
  } else if (name == "verify_local_fetches") {
    ok = ParseBool(value, &o->verify_local_fetches);
  } else if (name == "fetch_streams") {
    ok = absl::SimpleAtoi(value, &o->fetch_streams);
  } else if (name == "split_fetch_bytes") {
    ok = absl::SimpleAtoi(value, &o->split_fetch_bytes);
  } else if (name == "chunk_bytes") {
    ok = absl::SimpleAtoi(value, &o->chunk_bytes);
  } else if (name == "max_inflight_put_bytes") {
    ok = absl::SimpleAtoi(value, &o->max_inflight_put_bytes);
  } else if (name == "tls_ca") {
    o->security.tls_ca = std::string(value);
  } else if (name == "tls_cert") {
    o->security.tls_cert = std::string(value);
  } else if (name == "tls_key") {
    o->security.tls_key = std::string(value);
  } else if (name == "tls_server_name") {
    o->security.tls_server_name = std::string(value);
  } else if (name == "token") {
    o->security.token = std::string(value);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown option '", name, "'"));
  }
  if (!ok) return absl::InvalidArgumentError(absl::StrCat("bad value for ", name, ": '", value, "'"));
  return absl::OkStatus();
}

// "name=value" lines, blank lines skipped.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Pairs(const char* text) {
  std::vector<std::pair<std::string, std::string>> out;
  if (text == nullptr) return out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("'", line, "' is not name=value"));
    }
    out.emplace_back(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
  }
  return out;
}

absl::StatusOr<KeySchema> SchemaFrom(const char* text) {
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> pairs = Pairs(text);
  if (!pairs.ok()) return pairs.status();
  KeySchema s;
  for (const auto& [name, value] : *pairs) {
    bool ok = true;
    if (name == "model_id") s.model_id = value;
    else if (name == "weights_revision") s.weights_revision = value;
    else if (name == "tokenizer") s.tokenizer = value;
    else if (name == "kv_dtype") s.kv_dtype = value;
    else if (name == "layout") s.layout = value;
    else if (name == "lora_id") s.lora_id = value;
    else if (name == "lora_version") s.lora_version = value;
    else if (name == "extra_key") s.extra_keys.push_back(value);
    else if (name == "tokens_per_block") ok = absl::SimpleAtoi(value, &s.tokens_per_block);
    else if (name == "tp_rank") ok = absl::SimpleAtoi(value, &s.tp_rank);
    else if (name == "tp_size") ok = absl::SimpleAtoi(value, &s.tp_size);
    else if (name == "pp_rank") ok = absl::SimpleAtoi(value, &s.pp_rank);
    else if (name == "pp_size") ok = absl::SimpleAtoi(value, &s.pp_size);
    else if (name == "geometry_independent") ok = ParseBool(value, &s.geometry_independent);
    else return absl::InvalidArgumentError(absl::StrCat("unknown KeySchema field '", name, "'"));
    if (!ok) return absl::InvalidArgumentError(absl::StrCat("bad value for ", name, ": '", value, "'"));
  }
  if (absl::Status v = s.Validate(); !v.ok()) return v;
  return s;
}

}  // namespace
}  // namespace kvcache

using kvcache::WriteError;

extern "C" {

int kvc_abi_version(void) { return kvcache::kAbiVersion; }

kvc_client* kvc_client_create(const char* address, const char* options, char* error,
                              size_t error_len) {
  kvcache::ClearError(error, error_len);
  if (address == nullptr) {
    WriteError("address is NULL", error, error_len);
    return nullptr;
  }
  kvcache::ClientOptions o;
  o.address = address;
  auto pairs = kvcache::Pairs(options);
  if (!pairs.ok()) {
    WriteError(pairs.status().message(), error, error_len);
    return nullptr;
  }
  for (const auto& [name, value] : *pairs) {
    if (absl::Status s = kvcache::ApplyOption(name, value, &o); !s.ok()) {
      WriteError(s.message(), error, error_len);
      return nullptr;
    }
  }
  absl::StatusOr<std::unique_ptr<kvcache::Client>> client = kvcache::Client::Create(o);
  if (!client.ok()) {
    WriteError(client.status().message(), error, error_len);
    return nullptr;
  }
  return new kvc_client{std::move(*client)};
}

void kvc_client_destroy(kvc_client* client) { delete client; }

int64_t kvc_lookup(kvc_client* client, const char* ns, const uint8_t* keys,
                   const uint32_t* key_lens, size_t count, uint64_t* sizes, int32_t* tiers,
                   char* error, size_t error_len) {
  kvcache::ClearError(error, error_len);
  if (client == nullptr || ns == nullptr || (count > 0 && sizes == nullptr)) {
    WriteError("client, ns or sizes is NULL", error, error_len);
    return -1;
  }
  auto k = kvcache::KeysFrom(keys, key_lens, count);
  if (!k.ok()) {
    WriteError(k.status().message(), error, error_len);
    return -1;
  }
  const kvcache::LookupResult r = client->client->Lookup(ns, *k);
  for (size_t i = 0; i < r.hits; ++i) {
    sizes[i] = r.sizes[i];
    if (tiers != nullptr) tiers[i] = i < r.tiers.size() ? r.tiers[i] : 0;
  }
  if (!r.status.ok()) WriteError(r.status.ToString(), error, error_len);
  return static_cast<int64_t>(r.hits);
}

int64_t kvc_fetch_into(kvc_client* client, const char* ns, const uint8_t* keys,
                       const uint32_t* key_lens, size_t count, void* const* dests,
                       const uint64_t* sizes, char* error, size_t error_len) {
  kvcache::ClearError(error, error_len);
  if (client == nullptr || ns == nullptr || (count > 0 && (dests == nullptr || sizes == nullptr))) {
    WriteError("client, ns, dests or sizes is NULL", error, error_len);
    return -1;
  }
  auto k = kvcache::KeysFrom(keys, key_lens, count);
  if (!k.ok()) {
    WriteError(k.status().message(), error, error_len);
    return -1;
  }
  std::vector<kvcache::FetchTarget> targets;
  targets.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    if (dests[i] == nullptr || sizes[i] == 0) {
      WriteError(absl::StrCat("target ", i, " has no memory"), error, error_len);
      return -1;
    }
    targets.push_back({(*k)[i], absl::MakeSpan(static_cast<uint8_t*>(dests[i]), sizes[i])});
  }
  const kvcache::FetchResult r = client->client->Fetch(ns, targets);
  if (!r.status.ok()) WriteError(r.status.ToString(), error, error_len);
  return static_cast<int64_t>(r.blocks);
}

int64_t kvc_put_from(kvc_client* client, const char* ns, const uint8_t* parent,
                     uint32_t parent_len, const uint8_t* keys, const uint32_t* key_lens,
                     size_t count, const void* const* srcs, const uint64_t* sizes,
                     int evict_first_last, int32_t* outcomes, char* error, size_t error_len) {
  kvcache::ClearError(error, error_len);
  if (client == nullptr || ns == nullptr ||
      (count > 0 && (srcs == nullptr || sizes == nullptr || outcomes == nullptr))) {
    WriteError("client, ns, srcs, sizes or outcomes is NULL", error, error_len);
    return -1;
  }
  auto k = kvcache::KeysFrom(keys, key_lens, count);
  if (!k.ok()) {
    WriteError(k.status().message(), error, error_len);
    return -1;
  }
  kvcache::BlockKey parent_key;
  if (parent_len > 0) {
    auto p = kvcache::BlockKey::FromBytes(
        absl::string_view(reinterpret_cast<const char*>(parent), parent_len));
    if (parent == nullptr || !p.ok()) {
      WriteError("bad parent key", error, error_len);
      return -1;
    }
    parent_key = *p;
  }
  std::vector<kvcache::PutBlock> blocks(count);
  for (size_t i = 0; i < count; ++i) {
    if (srcs[i] == nullptr || sizes[i] == 0) {
      WriteError(absl::StrCat("block ", i, " has no bytes"), error, error_len);
      return -1;
    }
    blocks[i].key = (*k)[i];
    blocks[i].borrowed = {static_cast<const uint8_t*>(srcs[i]), sizes[i]};
  }
  if (evict_first_last && count > 0) blocks.back().evict_first = true;
  absl::StatusOr<std::vector<kvcache::v1::PutOutcome>> r =
      client->client->Put(ns, parent_key, blocks);
  if (!r.ok()) {
    WriteError(r.status().ToString(), error, error_len);
    return -1;
  }
  int64_t stored = 0;
  for (size_t i = 0; i < count; ++i) {
    outcomes[i] = i < r->size() ? (*r)[i] : 0;
    stored += outcomes[i] == kvcache::v1::PUT_STORED;
  }
  return stored;
}

int64_t kvc_schema_namespace(const char* schema, char* ns_out, size_t ns_out_len, char* error,
                             size_t error_len) {
  kvcache::ClearError(error, error_len);
  absl::StatusOr<kvcache::KeySchema> s = kvcache::SchemaFrom(schema);
  if (!s.ok()) {
    WriteError(s.status().message(), error, error_len);
    return -1;
  }
  const std::string ns = s->NamespaceName();
  if (ns_out == nullptr || ns_out_len <= ns.size()) {
    WriteError("the namespace buffer is too small", error, error_len);
    return -1;
  }
  std::memcpy(ns_out, ns.data(), ns.size());
  ns_out[ns.size()] = '\0';
  return static_cast<int64_t>(ns.size());
}

int64_t kvc_chain_keys(const char* schema, const uint32_t* tokens, size_t token_count,
                       uint8_t* keys_out, size_t max_keys, char* error, size_t error_len) {
  kvcache::ClearError(error, error_len);
  absl::StatusOr<kvcache::KeySchema> s = kvcache::SchemaFrom(schema);
  if (!s.ok()) {
    WriteError(s.status().message(), error, error_len);
    return -1;
  }
  if (token_count > 0 && tokens == nullptr) {
    WriteError("tokens is NULL", error, error_len);
    return -1;
  }
  absl::StatusOr<std::vector<kvcache::BlockKey>> keys =
      kvcache::ChainKeys(*s, absl::MakeConstSpan(tokens, token_count));
  if (!keys.ok()) {
    WriteError(keys.status().message(), error, error_len);
    return -1;
  }
  if (keys->size() > max_keys || (!keys->empty() && keys_out == nullptr)) {
    WriteError(absl::StrCat("room for ", max_keys, " keys, ", keys->size(), " needed"), error,
               error_len);
    return -1;
  }
  for (size_t i = 0; i < keys->size(); ++i) {
    std::memcpy(keys_out + 32 * i, (*keys)[i].data(), 32);
  }
  return static_cast<int64_t>(keys->size());
}

}  // extern "C"
