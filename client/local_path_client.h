// Client side of the same-host path (proto/kvcache/v1/local.proto): one Unix
// socket to the daemon, the host arena mapped once from the fd the daemon
// passes, and fetches and puts that copy straight between the mapping and
// the caller's memory under leases. Transport errors are reported as such so
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

  // As DataPortClient::Fetch, copying from the mapping under a lease.
  Outcome Fetch(const v1::FetchRequest& request, absl::Span<const FetchTarget> targets,
                bool verify, size_t* completed);
  // As DataPortClient::Put, writing each block into leased staging pages.
  Outcome Put(const std::string& ns, const std::string& parent, absl::Span<const PutBlock> blocks,
              std::vector<v1::PutOutcome>* outcomes);

 private:
  LocalPathClient(int fd, uint8_t* base, size_t size) : fd_(fd), base_(base), size_(size) {}
  // Sends one request and reads its reply (of type `expect`).
  Outcome Call(LocalMessage type, const google::protobuf::Message& body, LocalMessage expect,
               google::protobuf::Message* reply) ABSL_LOCKS_EXCLUDED(mu_);
  void Release(uint64_t lease_id) ABSL_LOCKS_EXCLUDED(mu_);
  // True if every extent lies inside the mapping and they add up to `length`.
  bool ExtentsFit(const google::protobuf::RepeatedPtrField<v1::ArenaExtent>& extents,
                  uint64_t length) const;

  Mutex mu_;  // one request at a time on fd_
  const int fd_;
  uint8_t* const base_;  // the arena, mapped MAP_SHARED
  const size_t size_;
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_LOCAL_PATH_CLIENT_H_
