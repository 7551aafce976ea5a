// One same-host connection once it is welcomed (kvstore/server/local_path_server.h):
// its staging space, its share of the arena, its leases, and one handler
// per message of proto/local_wire.h. Leases live here, so they all go back
// when the connection does, and expire after the lease TTL meanwhile.
//
// Thread safety: a session is served by its connection's one thread.
#ifndef KVCACHE_KVSTORE_SERVER_LOCAL_SESSION_H_
#define KVCACHE_KVSTORE_SERVER_LOCAL_SESSION_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/byte_stream.h"
#include "kvstore/store/connection_share.h"
#include "kvstore/server/service_context.h"
#include "kvstore/store/staging_space.h"
#include "proto/local_wire.h"

namespace kvcache {

class LocalSession {
 public:
  struct Options {
    absl::Duration lease_ttl = absl::Seconds(30);
    absl::Duration stall_timeout = absl::Seconds(10);  // inside one message
    bool gpu_shared = false;  // the welcome shared the GPU page pool
    // Run on the CPU each request says its client waits on (the welcome
    // set follows_cpu).
    bool follow_cpu = true;
    // Who the peer is (by its uid): every request is scoped to its tenant,
    // and a put needs the write role.
    Identity identity{kDefaultTenant, Role::kAdmin};
  };
  // `fd` is the welcomed connection (not owned); `staging` the staging space
  // its welcome carried.
  LocalSession(ServiceContext& service, const Options& options, int fd,
               std::unique_ptr<StagingSpace> staging);
  ~LocalSession();

  // Serves messages until the client goes, breaks the protocol, or stalls
  // inside a message for longer than options.stall_timeout.
  void Run();

 private:
  struct Lease;
  // Each handles one message whose body is `body`, received at `now`, and
  // answers it (one-way messages get no answer). False: close the
  // connection (the answer could not be sent, or the body is garbage where
  // no answer is owed).
  bool OnFetchLease(const std::string& body, absl::Time now);
  bool OnGpuLease(const std::string& body, absl::Time now);
  bool OnPutBegin(const std::string& body, absl::Time now);
  bool OnPutStaged(const std::string& body);
  bool OnDirectReads(const std::string& body);
  bool OnReleaseOrCommit(const std::string& body, bool commit);
  // A new lease expiring lease_ttl after `now`, with its id.
  Lease& NewLease(absl::Time now, uint64_t* id);

  ServiceContext& service_;
  const Options options_;
  const int fd_;
  // Reads fd_ (not owned): a message's head and body, and often the next
  // message, come in one recv.
  ByteStream stream_;
  // Declared before the leases, whose ranges point into it and which charge
  // the share: destroyed after them.
  const std::unique_ptr<StagingSpace> staging_;
  const std::shared_ptr<ConnectionShare> share_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Lease>> leases_;
  uint64_t next_lease_ = 1;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_LOCAL_SESSION_H_
