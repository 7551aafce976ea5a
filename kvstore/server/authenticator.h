// Who a caller is: the tenant every one of its requests is scoped to and the
// role that bounds what it may do. The daemon derives both from what the
// caller proves (a bearer token, a verified client certificate, a same-host
// peer's uid), never from a request field.
//
// The token file, one identity per line ('#' starts a comment):
//   <sha256 of the token, 64 hex digits>  <tenant>  <role>
//   cn:<client certificate common name>   <tenant>  <role>
// Roles, each allowing what the ones before it do: read (Hello, Lookup,
// Fetch, List, Inspect, Why, Stats of its own tenant), write (+ Put, Evict in
// its own tenant), admin (+ List, Evict and Stats of every tenant).
// `printf %s "$TOKEN" | sha256sum` gives a token's line; the file never holds
// a token itself.
//
// Thread safety: all methods may be called from any thread at once; Reload
// swaps the table whole, so a call sees the old one or the new one.
#ifndef KVCACHE_KVSTORE_SERVER_AUTHENTICATOR_H_
#define KVCACHE_KVSTORE_SERVER_AUTHENTICATOR_H_

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/mutex.h"

namespace kvcache {

enum class Role { kRead = 1, kWrite = 2, kAdmin = 3 };

// "read", "write", "admin".
const char* RoleName(Role role);

struct Identity {
  std::string tenant;
  Role role = Role::kRead;
};

// The one tenant of a daemon without authentication; its callers are admins.
inline constexpr char kDefaultTenant[] = "default";

// PERMISSION_DENIED unless `who` may do what `needed` allows.
absl::Status Permit(const Identity& who, Role needed);

// The identity `caller` acts with when it asks to act for `tenant`
// (ChannelSecurity::act_for_tenant): itself when `tenant` is empty or its
// own, else an admin in `tenant`. PERMISSION_DENIED unless the caller is an
// admin; INVALID_ARGUMENT for a name no token file could hold.
absl::StatusOr<Identity> ActFor(Identity caller, absl::string_view tenant);

class Authenticator {
 public:
  struct Options {
    // The token file (format above); "" turns authentication off: every
    // caller is kDefaultTenant with the admin role, as before it existed.
    std::string token_file;
    // Same-host peers: "uid:tenant:role,..." ("self" for the daemon's own
    // uid). With authentication on, a peer not listed is refused.
    std::string local_tenants;
  };

  // INVALID_ARGUMENT naming the file and line, or the bad local entry.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(const Options& options);

  bool enabled() const { return !options_.token_file.empty(); }

  // Reads the token file again (SIGHUP). On any error the table in force
  // stays, and the error says why.
  absl::Status Reload();

  // The identity of a caller presenting `authorization` (the metadata's
  // value, "Bearer <token>"; empty if none) over a connection whose verified
  // client certificate has common name `certificate_cn` (empty if none). A
  // token wins over a certificate. UNAUTHENTICATED when neither is known.
  absl::StatusOr<Identity> OfCaller(absl::string_view authorization,
                                    absl::string_view certificate_cn) const;

  // The identity of a same-host peer (from SO_PEERCRED).
  absl::StatusOr<Identity> OfLocalPeer(uid_t uid) const;

  // How many identities the table in force holds (tokens and certificates).
  size_t identities() const;

 private:
  using TokenHash = std::array<uint8_t, 32>;
  struct Table {
    std::vector<std::pair<TokenHash, Identity>> tokens;
    std::vector<std::pair<std::string, Identity>> certificates;  // by common name
  };
  struct LocalPeer {
    uid_t uid;
    Identity identity;
  };

  explicit Authenticator(const Options& options) : options_(options) {}
  static absl::StatusOr<std::shared_ptr<const Table>> ReadTable(const std::string& path);
  std::shared_ptr<const Table> table() const;

  const Options options_;
  std::vector<LocalPeer> local_peers_;
  mutable Mutex mu_;
  std::shared_ptr<const Table> table_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_AUTHENTICATOR_H_
