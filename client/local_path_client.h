// Client side of the same-host path (proto/kvcache/v1/local.proto): one Unix
// socket to the daemon, the host arena mapped read-only once from the fd the
// daemon passes, and this connection's staging space mapped writable.
// Fetches copy straight from the arena to the caller's memory under a lease;
// puts copy the caller's bytes into a leased staging range, which the daemon
// copies into the arena at commit. Transport errors are reported as such so
// the caller can fall back to the data port or gRPC.
//
// Thread safety: all methods may be called from any thread; requests on the
// socket take turns, copies run in parallel.
#ifndef KVCACHE_CLIENT_LOCAL_PATH_CLIENT_H_
#define KVCACHE_CLIENT_LOCAL_PATH_CLIENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/data_port_client.h"
#include "common/mutex.h"
#include "kvcache/v1/local.pb.h"
#include "proto/local_wire.h"

namespace kvcache {

class LocalPathClient {
 public:
  // Connects to `path`, checks that the daemon there is `instance_id` (as
  // Hello said), and maps its arena. PERMISSION_DENIED if the daemon refuses
  // our uid; UNAVAILABLE for anything else that goes wrong.
  static absl::StatusOr<std::unique_ptr<LocalPathClient>> Connect(const std::string& path,
                                                                  const std::string& instance_id,
                                                                  absl::Duration timeout);
  ~LocalPathClient();

  using Outcome = DataPortClient::Outcome;

  // As DataPortClient::Fetch, copying from the mapping under a lease. With
  // `verify`, whole blocks are also re-hashed here; the arena is read-only to
  // every client and the daemon hashed each block as it stored it, so that
  // guards only against a daemon bug, at about a third of the fetch speed.
  Outcome Fetch(const v1::FetchRequest& request, absl::Span<const FetchTarget> targets, bool verify,
                size_t* completed, std::vector<v1::Tier>* tiers);
  // As DataPortClient::Put, writing each block into a leased staging range.
  Outcome Put(const std::string& ns, const std::string& parent, absl::Span<const PutBlock> blocks,
              std::vector<v1::PutOutcome>* outcomes);

 private:
  LocalPathClient(int fd, const uint8_t* arena, size_t arena_size, uint8_t* staging,
                  size_t staging_size)
      : fd_(fd),
        arena_(arena),
        arena_size_(arena_size),
        staging_(staging),
        staging_size_(staging_size) {}
  // Sends one request and reads its reply (of type `expect`).
  Outcome Call(LocalMessage type, const google::protobuf::Message& body, LocalMessage expect,
               google::protobuf::Message* reply) ABSL_LOCKS_EXCLUDED(mu_);
  void Release(uint64_t lease_id) ABSL_LOCKS_EXCLUDED(mu_);
  // True if every extent lies inside a mapping of `mapping_size` bytes and
  // they add up to `length`.
  static bool ExtentsFit(const google::protobuf::RepeatedPtrField<v1::ArenaExtent>& extents,
                         uint64_t mapping_size, uint64_t length);

  Mutex mu_;  // one request at a time on fd_
  const int fd_;
  const uint8_t* const arena_;  // mapped read-only, MAP_SHARED
  const size_t arena_size_;
  uint8_t* const staging_;  // this connection's, mapped writable
  const size_t staging_size_;
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_LOCAL_PATH_CLIENT_H_
