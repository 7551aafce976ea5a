#include "kvstore/server/authenticator.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace kvcache {
namespace {

std::optional<Role> ParseRole(absl::string_view text) {
  if (text == "read") return Role::kRead;
  if (text == "write") return Role::kWrite;
  if (text == "admin") return Role::kAdmin;
  return std::nullopt;
}

bool ValidTenant(absl::string_view tenant) {
  if (tenant.empty() || tenant.size() > 128) return false;
  for (char c : tenant) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kRead:
      return "read";
    case Role::kWrite:
      return "write";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

absl::Status Permit(const Identity& who, Role needed) {
  if (static_cast<int>(who.role) >= static_cast<int>(needed)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("tenant ", who.tenant, " has the ",
                                                  RoleName(who.role), " role; this needs ",
                                                  RoleName(needed)));
}

absl::StatusOr<Identity> ActFor(Identity caller, absl::string_view tenant) {
  if (tenant.empty() || tenant == caller.tenant) return caller;
  if (!ValidTenant(tenant)) {
    return absl::InvalidArgumentError("the tenant to act for is not a tenant name");
  }
  if (caller.role != Role::kAdmin) {
    return absl::PermissionDeniedError(absl::StrCat("tenant ", caller.tenant, " has the ",
                                                    RoleName(caller.role),
                                                    " role; acting for another tenant needs admin"));
  }
  return Identity{std::string(tenant), Role::kAdmin};
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(const Options& options) {
  std::unique_ptr<Authenticator> auth(new Authenticator(options));
  for (absl::string_view entry : absl::StrSplit(options.local_tenants, ',', absl::SkipWhitespace())) {
    std::vector<absl::string_view> parts = absl::StrSplit(absl::StripAsciiWhitespace(entry), ':');
    uint32_t uid = 0;
    std::optional<Role> role = parts.size() == 3 ? ParseRole(parts[2]) : std::nullopt;
    const bool uid_ok = parts.size() == 3 && (parts[0] == "self" ? (uid = getuid(), true)
                                                                 : absl::SimpleAtoi(parts[0], &uid));
    if (!uid_ok || !role.has_value() || !ValidTenant(parts[1])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--local_tenants: '", entry, "' is not uid:tenant:role (role read, write or admin)"));
    }
    auth->local_peers_.push_back({uid, Identity{std::string(parts[1]), *role}});
  }
  if (!options.local_tenants.empty() && !auth->enabled()) {
    return absl::InvalidArgumentError("--local_tenants needs --token_file (authentication on)");
  }
  if (auth->enabled()) {
    absl::StatusOr<std::shared_ptr<const Table>> table = ReadTable(options.token_file);
    if (!table.ok()) return table.status();
    MutexLock lock(&auth->mu_);
    auth->table_ = std::move(*table);
  }
  return auth;
}

absl::StatusOr<std::shared_ptr<const Authenticator::Table>> Authenticator::ReadTable(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read token file ", path));
  auto table = std::make_shared<Table>();
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    absl::string_view text = line;
    if (size_t hash = text.find('#'); hash != absl::string_view::npos) text = text.substr(0, hash);
    std::vector<absl::string_view> fields =
        absl::StrSplit(text, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", number, ": ", why));
    };
    if (fields.size() != 3) return bad("want '<sha256 hex | cn:NAME> <tenant> <role>'");
    std::optional<Role> role = ParseRole(fields[2]);
    if (!role.has_value()) return bad("role must be read, write or admin");
    if (!ValidTenant(fields[1])) return bad("tenant must be 1-128 of [A-Za-z0-9._-]");
    Identity identity{std::string(fields[1]), *role};
    if (absl::ConsumePrefix(&fields[0], "cn:")) {
      if (fields[0].empty()) return bad("empty certificate common name");
      table->certificates.emplace_back(std::string(fields[0]), std::move(identity));
      continue;
    }
    if (fields[0].size() != 64 ||
        !std::all_of(fields[0].begin(), fields[0].end(), absl::ascii_isxdigit)) {
      return bad("a token's line starts with its SHA-256, 64 hex digits (sha256sum)");
    }
    const std::string bytes = absl::HexStringToBytes(fields[0]);
    TokenHash hash;
    std::copy(bytes.begin(), bytes.end(), hash.begin());
    table->tokens.emplace_back(hash, std::move(identity));
  }
  return std::shared_ptr<const Table>(std::move(table));
}

absl::Status Authenticator::Reload() {
  if (!enabled()) return absl::OkStatus();
  absl::StatusOr<std::shared_ptr<const Table>> table = ReadTable(options_.token_file);
  if (!table.ok()) return table.status();
  MutexLock lock(&mu_);
  table_ = std::move(*table);
  return absl::OkStatus();
}

std::shared_ptr<const Authenticator::Table> Authenticator::table() const {
  MutexLock lock(&mu_);
  return table_;
}

size_t Authenticator::identities() const {
  std::shared_ptr<const Table> t = table();
  return t == nullptr ? 0 : t->tokens.size() + t->certificates.size();
}

absl::StatusOr<Identity> Authenticator::OfCaller(absl::string_view authorization,
                                                 absl::string_view certificate_cn) const {
  if (!enabled()) return Identity{kDefaultTenant, Role::kAdmin};
  std::shared_ptr<const Table> t = table();
  if (!authorization.empty()) {
    absl::string_view token = authorization;
    if (!absl::ConsumePrefix(&token, "Bearer ") || token.empty()) {
      return absl::UnauthenticatedError("authorization must be 'Bearer <token>'");
    }
    TokenHash presented;
    SHA256(reinterpret_cast<const uint8_t*>(token.data()), token.size(), presented.data());
    // Every entry is compared, each in constant time, so how long this takes
    // says nothing about which entry matched or how much of one did.
    const Identity* found = nullptr;
    for (const auto& [hash, identity] : t->tokens) {
      if (CRYPTO_memcmp(hash.data(), presented.data(), hash.size()) == 0) found = &identity;
    }
    if (found == nullptr) return absl::UnauthenticatedError("unknown or revoked token");
    return *found;
  }
  if (!certificate_cn.empty()) {
    for (const auto& [cn, identity] : t->certificates) {
      if (cn == certificate_cn) return identity;
    }
    return absl::UnauthenticatedError(
        absl::StrCat("no identity for client certificate CN=", certificate_cn));
  }
  return absl::UnauthenticatedError(
      "no credentials: send 'authorization: Bearer <token>' or a client certificate");
}

absl::StatusOr<Identity> Authenticator::OfLocalPeer(uid_t uid) const {
  if (!enabled()) return Identity{kDefaultTenant, Role::kAdmin};
  for (const LocalPeer& peer : local_peers_) {
    if (peer.uid == uid) return peer.identity;
  }
  return absl::UnauthenticatedError(
      absl::StrCat("uid ", uid, " has no tenant (kvstored --local_tenants)"));
}

}  // namespace kvcache
