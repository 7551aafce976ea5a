// The same-host path (proto/kvcache/v1/local.proto): a Unix-domain socket
// where trusted local workers receive the host arena's memfd once and then
// move leases of arena pages instead of bytes.
//
// A peer is served only if its uid or gid (SO_PEERCRED) is on the allowed
// lists. The arena's memfd is sealed, so clients map it read-only: only the
// daemon ever writes a cached block, and a client need not re-hash what it
// reads. A fetch lease pins the blocks it names (eviction skips them) until
// it is released. A put lease holds a range of the connection's own
// writable staging memfd (StagingSpace); the client writes the block there
// and commits with its checksum, and only then does the daemon take arena
// pages and copy the block into them, hashing the copy (verified as on every
// other path). So a put that is never committed holds no arena memory.
// Leases belong to their connection and expire after a TTL: a client that
// dies, or stalls, gives its pages back. What a connection pins and stages
// counts against its own share of the arena (connection_share.h). Each
// connection has its own thread.
// With a block directory (kvstore/index/block_directory.h) its memfd goes with the
// welcome too, fetch leases name the namespace's id, and clients report the
// blocks they copied through it (kDirectReads, one-way).
//
// With a GPU tier the welcome shares the GPU page pool too (a CUDA IPC
// handle; a memfd for a pool in host memory), and a GPU lease holds the
// DeviceBlocks of the leading requested blocks that have a GPU copy and
// names where in the pool they lie: the worker copies them device to
// device, and their pages are not reused until the lease goes, even if the
// blocks are evicted or demoted meanwhile (a held GPU copy is never freed).
//
// Isolation: whoever maps the arena can read every page of every tenant.
// This path is for trusted workers of the allowed uids only; tenant
// isolation for untrusted clients stays on gRPC and the data port.
//
// Thread safety: Start and Shutdown from one thread; serving is internal.
#ifndef KVCACHE_KVSTORE_SERVER_LOCAL_PATH_SERVER_H_
#define KVCACHE_KVSTORE_SERVER_LOCAL_PATH_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gpu/device_page_pool.h"
#include "kvcache/v1/local.pb.h"
#include "kvstore/server/connection_threads.h"
#include "kvstore/server/service_context.h"
#include "kvstore/store/staging_space.h"

namespace kvcache {

class LocalPathServer {
 public:
  struct Options {
    std::string path;
    std::vector<uid_t> allowed_uids;
    std::vector<gid_t> allowed_gids;
    absl::Duration lease_ttl = absl::Seconds(30);
    // Each connection's staging memfd; at least the largest block. Memory is
    // taken only for the pages its concurrent puts touch.
    uint64_t staging_bytes = 128ull << 20;
    int max_connections = 256;
    // Longest pause allowed inside one message; past it the connection is
    // closed and its leases and staging freed.
    absl::Duration stall_timeout = absl::Seconds(10);
    std::string instance_id;
    // Each connection's thread runs on the CPU its client says it waits on
    // (common/cpu_pin.h).
    bool follow_cpu = true;
  };

  // FAILED_PRECONDITION if the arena cannot be shared read-only (no sealed
  // memfd), INVALID_ARGUMENT if staging_bytes is below the largest block,
  // UNAVAILABLE if the socket cannot be bound. Replaces a stale socket file
  // at `path`.
  static absl::StatusOr<std::unique_ptr<LocalPathServer>> Start(ServiceContext& service,
                                                                const Options& options);
  // Shuts down and removes the socket file.
  ~LocalPathServer();

  const std::string& path() const { return options_.path; }
  // Whether GPU leases are served, and if not, why.
  bool shares_gpu_pool() const { return gpu_share_.has_value(); }
  const std::string& gpu_unshared() const { return gpu_unshared_; }
  void Shutdown();

 private:
  LocalPathServer(ServiceContext& service, const Options& options)
      : service_(service), options_(options) {}
  // Checks the peer, welcomes it, then runs its LocalSession.
  void Serve(int fd);
  bool Allowed(int fd, std::string* who, uid_t* uid) const;
  // What a welcome says, and the fds it carries (in the order the client
  // reads them: arena, staging, directory, GPU pool in host memory).
  v1::LocalWelcome Welcome(const StagingSpace& staging) const;
  std::vector<int> Fds(const StagingSpace& staging) const;

  ServiceContext& service_;
  const Options options_;
  std::optional<DevicePagePool::Share> gpu_share_;  // set once by Start
  std::string gpu_unshared_;
  std::unique_ptr<ConnectionThreads> connections_;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_LOCAL_PATH_SERVER_H_
