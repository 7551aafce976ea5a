// Client side of the same-host path (proto/kvcache/v1/local.proto): one Unix
// socket to the daemon, the host arena mapped read-only once from the fd the
// daemon passes, and this connection's staging space mapped writable.
// Fetches first copy what the daemon's block directory lists, with no round
// trip (reported afterwards, one-way); the rest they copy from the arena
// under a lease. Puts copy the caller's bytes into a leased staging range,
// which the daemon copies into the arena at commit. With a GPU tier, the
// daemon shares its GPU page pool too, and GPU leases name where in it
// blocks lie (client/gpu_transfer.h copies them device to device). Transport errors are
// reported as such so the caller can fall back to the data port or gRPC.
//
// Thread safety: all methods may be called from any thread; requests on the
// socket take turns, copies run in parallel.
#ifndef KVCACHE_CLIENT_LOCAL_PATH_CLIENT_H_
#define KVCACHE_CLIENT_LOCAL_PATH_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/block_directory_reader.h"
#include "client/direct_read_reporter.h"
#include "client/owed_releases.h"
#include "client/transport.h"
#include "common/byte_stream.h"
#include "common/mutex.h"
#include "common/range_allocator.h"
#include "kvcache/v1/local.pb.h"
#include "proto/local_wire.h"

namespace kvcache {

class LocalPathClient : public Transport {
 public:
  struct Options {
    absl::Duration timeout = absl::Seconds(5);  // of every exchange: the deadline
    // Map the daemon's block directory, if it has one, and copy the blocks
    // it lists with no request.
    bool direct_reads = true;
    // Answer lookups from the directory too (Lookup).
    bool direct_lookups = true;
    // Re-hash whole fetched blocks here (only the lease path is used then).
    // The arena is read-only to every client and the daemon hashed each
    // block as it stored it, so this guards only against a daemon bug, at
    // about a fifth of a one-block fetch's speed (docs/BENCHMARKS.md).
    bool verify = false;
    // The tenant Hello said this client is: a daemon whose welcome scopes
    // the connection to another tenant (the uid's, not the token's) is not
    // used (FAILED_PRECONDITION), so one client never sees two tenants.
    // Empty: not checked.
    std::string tenant;
  };

  // Connects to `path`, checks that the daemon there is `instance_id` (as
  // Hello said), and maps its arena. PERMISSION_DENIED if the daemon refuses
  // our uid; UNAVAILABLE for anything else that goes wrong.
  static absl::StatusOr<std::unique_ptr<LocalPathClient>> Connect(const std::string& path,
                                                                  const std::string& instance_id,
                                                                  const Options& options);
  ~LocalPathClient() override;

  // Most fds a daemon's welcome carries: arena, staging, directory, GPU pool.
  static constexpr size_t kWelcomeFds = 4;

  ClientPath path() const override { return ClientPath::kSameHost; }
  // Copies the leading blocks the directory lists, then the rest from the
  // mapping under a lease (one round trip).
  Outcome Fetch(const FetchCall& call, absl::Span<const FetchTarget> targets,
                FetchProgress* progress) override;
  // Each block written into a staging range, which the daemon copies into
  // the arena (and verifies) at commit.
  Outcome Put(const std::string& ns, const BlockKey& parent, absl::Span<const PutBlock> blocks,
              std::vector<v1::PutOutcome>* outcomes) override;
  // The leading keys the daemon's block directory lists now (host-resident
  // blocks): no request, no arena page touched, and no LRU touch in the
  // daemon (a fetch is one). Complete (not partial) when the rest of the
  // chain is known not to be cached either: the directory lists every
  // cached block, or its presence table says the first unlisted key is in
  // no tier. Partial with no hits without a directory, or before a fetch
  // lease told us the namespace's id.
  Outcome Lookup(const std::string& ns, absl::Span<const BlockKey> keys,
                 LookupResult* result) override ABSL_LOCKS_EXCLUDED(ns_mu_);

  // The daemon's GPU page pool, as its welcome shared it.
  struct GpuPool {
    uint64_t bytes = 0;
    uint32_t page_bytes = 0;
    std::string ipc_handle;  // a cudaIpcMemHandle_t; empty for a pool in host memory
    std::string pci_bus_id;  // of the pool's GPU
    // A pool in host memory (kvstored --gpu_in_host_memory), mapped
    // read-only: how tests read leased blocks without a GPU.
    const uint8_t* host_mapping = nullptr;
  };
  // Null if the daemon has no GPU tier (or could not share it).
  const GpuPool* gpu_pool() const { return gpu_pool_.get(); }

  // Where in the GPU pool the leading requested blocks that have a GPU copy
  // lie: items as in a fetch lease (item_index counts from 0, in order),
  // extents are byte ranges of the pool. Their pages are not reused until
  // ReleaseLease(lease_id), or the daemon's lease TTL (--lease_ttl_s)
  // passes. NOT_FOUND if the first block has no GPU copy (it may still be
  // cached below); FAILED_PRECONDITION without a shared pool; UNAVAILABLE
  // for a transport error; INTERNAL (the lease released) if the daemon
  // names a range outside the pool; the daemon's errors for a bad request.
  struct GpuLease {
    uint64_t lease_id = 0;
    std::vector<v1::LeasedItem> items;
  };
  absl::StatusOr<GpuLease> LeaseGpuBlocks(const v1::FetchRequest& request);
  // Gives a lease back (one-way).
  void ReleaseLease(uint64_t lease_id) { Release(lease_id); }

  // Put buffers (put_buffer.h): `bytes` of the staging space, held until
  // FreeStaging(data, bytes). FAILED_PRECONDITION if the daemon takes no
  // kPutStaged; INVALID_ARGUMENT for 0 bytes; RESOURCE_EXHAUSTED if put
  // buffers would hold more than half of the space (the rest is for puts of
  // other memory) or none is free.
  absl::StatusOr<uint8_t*> ReserveStaging(size_t bytes) ABSL_LOCKS_EXCLUDED(staging_mu_);
  void FreeStaging(uint8_t* data, size_t bytes) ABSL_LOCKS_EXCLUDED(staging_mu_);

  // Blocks put from put buffers, read by the daemon where they lay.
  uint64_t in_place_puts() const { return in_place_puts_.load(std::memory_order_relaxed); }

  // Whether the daemon's block directory is mapped, and the blocks copied
  // through it so far.
  bool has_directory() const { return directory_ != nullptr; }
  uint64_t direct_reads() const { return direct_reads_.load(std::memory_order_relaxed); }

 private:
  LocalPathClient(const Options& options, int fd, const uint8_t* arena, size_t arena_size,
                  uint8_t* staging, size_t staging_size)
      : options_(options),
        fd_(fd),
        replies_(fd, /*owns_fd=*/false),
        arena_(arena),
        arena_size_(arena_size),
        staging_(staging),
        staging_size_(staging_size),
        owed_releases_(std::make_unique<OwedReleases>(kReleaseDelay,
                                                      [this](const std::string& framed) {
                                                        SendReleases(framed);
                                                      })) {}
  // The longest an owed release waits for a request to carry it.
  static constexpr absl::Duration kReleaseDelay = absl::Milliseconds(5);
  // Sends one request and reads its reply (of type `expect`). Where the
  // daemon follows CPUs, the request says which CPU this thread is on, and
  // a put's thread stays there until the answer (common/cpu_pin.h).
  // Owed lease releases (owed_releases_) go ahead of the request, in the
  // same write.
  Outcome Call(LocalMessage type, const google::protobuf::Message& body, LocalMessage expect,
               google::protobuf::Message* reply) ABSL_LOCKS_EXCLUDED(mu_);
  // Sends the release of `lease_id` now, after any owed ones.
  void Release(uint64_t lease_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Sends framed kRelease messages alone (owed_releases_'s thread).
  void SendReleases(const std::string& framed) ABSL_LOCKS_EXCLUDED(mu_);
  // Reads one reply from the daemon; false on EOF, error or timeout.
  bool ReadReply(uint32_t* type, std::string* body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the directory may answer now: the daemon's heartbeat in it is
  // fresh (a hung daemon) and its end of our socket is still open (a daemon
  // that exited: seen at once, with one poll(2) of no wait).
  bool DirectoryAnswers() const;
  // The daemon's id of namespace `ns`, if a lease told us.
  std::optional<uint32_t> NamespaceId(const std::string& ns) ABSL_LOCKS_EXCLUDED(ns_mu_);
  // Copies the leading targets the directory lists; returns how many.
  size_t CopyListed(const std::string& ns, absl::Span<const FetchTarget> targets, bool streaming,
                    std::vector<v1::Tier>* tiers) ABSL_LOCKS_EXCLUDED(ns_mu_);
  // Sends one report of direct reads (one-way).
  void SendReport(const v1::DirectReadReport& report) ABSL_LOCKS_EXCLUDED(mu_);
  // True if every extent lies inside a mapping of `mapping_size` bytes and
  // they add up to `length`.
  static bool ExtentsFit(const google::protobuf::RepeatedPtrField<v1::ArenaExtent>& extents,
                         uint64_t mapping_size, uint64_t length);

  // Connect's steps: the socket, with `timeout` on every read and write;
  // the daemon's welcome and its fds (refusals and another daemon's
  // welcome are errors); then, on the new client, the block directory's
  // and a GPU pool's mappings, each best effort.
  static absl::StatusOr<int> ConnectSocket(const std::string& path, absl::Duration timeout);
  static absl::StatusOr<v1::LocalWelcome> ReadWelcome(int fd, const std::string& instance_id,
                                                      int (*fds)[kWelcomeFds]);
  void MapDirectory(int fd, uint64_t bytes);
  void MapGpuPool(const v1::LocalWelcome& welcome, int fd);

  // A daemon's status code and message as a Status.
  static absl::Status StatusOf(int32_t code, const std::string& message);

  // Put by kPutStaged (local_path_put.cc). A block written into a staging
  // range this client took, and the request that names it; gives the range
  // back when destroyed (after the daemon's answer).
  class StagedPut;
  // Takes a range for `block` and copies and hashes it there, waiting for
  // other puts on this connection to give ranges back. A block already in
  // the staging space (a put buffer's) is only hashed, where it lies.
  // OUT_OF_RANGE for a block larger than the whole staging space;
  // RESOURCE_EXHAUSTED if it fits only where put buffers are (the caller
  // sends it another way).
  absl::StatusOr<StagedPut> StageBlock(const std::string& ns, const std::string& parent,
                                       const PutBlock& block) ABSL_LOCKS_EXCLUDED(staging_mu_);
  // Sends one staged block and reads the daemon's answer into *outcome.
  Outcome SendStaged(const StagedPut& put, v1::PutOutcome* outcome) ABSL_LOCKS_EXCLUDED(mu_);
  // The blocks by kPutStaged, one after another.
  Outcome PutAllStaged(const std::string& ns, const std::string& parent,
                       absl::Span<const PutBlock> blocks, std::vector<v1::PutOutcome>* outcomes);
  // Put by put lease (kPutBegin, kPutCommit): two round trips a block.
  // `parent` in PutAllStaged and PutByLease is the first block's parent's
  // bytes.
  Outcome PutByLease(const std::string& ns, const std::string& parent,
                     absl::Span<const PutBlock> blocks, std::vector<v1::PutOutcome>* outcomes);

  const Options options_;
  Mutex mu_;  // one request at a time on fd_
  const int fd_;
  // Reads the daemon's replies on fd_: a reply's head and body in one recv.
  ByteStream replies_ ABSL_GUARDED_BY(mu_);
  const uint8_t* const arena_;  // mapped read-only, MAP_SHARED
  const size_t arena_size_;
  uint8_t* const staging_;  // this connection's, mapped writable
  const size_t staging_size_;
  // Set once by Connect: the daemon takes kPutStaged, and the client then
  // picks the staging ranges itself (concurrent puts on one connection
  // each take their own).
  bool put_staged_ = false;
  bool follows_cpu_ = false;  // set once by Connect: as the welcome said
  Mutex staging_mu_;
  std::unique_ptr<RangeAllocator> staging_ranges_ ABSL_GUARDED_BY(staging_mu_);
  CondVar staging_freed_;  // a staged put gave its range back
  uint64_t put_buffer_bytes_ ABSL_GUARDED_BY(staging_mu_) = 0;  // held by put buffers
  int staged_ranges_held_ ABSL_GUARDED_BY(staging_mu_) = 0;      // by StagedPuts

  // Set once by Connect when the daemon shares its block directory.
  const uint8_t* directory_map_ = nullptr;  // mapped read-only
  size_t directory_size_ = 0;
  std::unique_ptr<BlockDirectoryReader> directory_;
  std::unique_ptr<DirectReadReporter> reporter_;
  std::unique_ptr<GpuPool> gpu_pool_;  // set once by Connect
  // The releases of fetch leases whose blocks were copied, sent ahead of the
  // next request (owed_releases.h).
  std::unique_ptr<OwedReleases> owed_releases_;
  std::atomic<uint64_t> direct_reads_{0};
  std::atomic<uint64_t> in_place_puts_{0};
  // The daemon's ids of namespaces (learned from fetch leases), which
  // directory slots carry; fixed for the daemon's life.
  Mutex ns_mu_;
  absl::flat_hash_map<std::string, uint32_t> namespace_ids_ ABSL_GUARDED_BY(ns_mu_);
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_LOCAL_PATH_CLIENT_H_
