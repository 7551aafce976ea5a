// Client: what an inference worker links to use one kvstored node.
//
//   auto client = kvcache::Client::Create({.address = "127.0.0.1:50051"});
//   std::vector<BlockKey> keys = *ChainKeys(schema, prompt_tokens);
//   LookupResult hit = (*client)->Lookup(schema.NamespaceName(), keys);
//   ... fetch keys[0, hit.hits) into KV buffers, prefill the rest, then
//   (*client)->PutAsync(ns, parent_of_first_new, new_blocks);
//
// Every call has a deadline, and every failure is a miss: the result carries
// the error (and a counter goes up) but never throws or blocks the worker
// for longer than the deadline, so the worker can always fall back to
// prefill. PutAsync never blocks: over its in-flight byte budget it drops the
// blocks and counts them.
//
// Thread safety: all methods may be called from any thread at once.
#ifndef KVCACHE_CLIENT_CLIENT_H_
#define KVCACHE_CLIENT_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/channel_security.h"
#include "client/client_metrics.h"
#include "client/fast_paths.h"
#include "client/path_ladder.h"
#include "client/put_buffer.h"
#include "client/requests.h"
#include "client/transport.h"
#include "key/block_key.h"
#include "key/key_schema.h"
#include "kvcache/v1/kvcache.pb.h"

namespace kvcache {

struct ClientOptions {
  std::string address = "127.0.0.1:50051";
  // Deadline of every call.
  absl::Duration deadline = absl::Seconds(5);
  // Bytes PutAsync may hold queued or in flight; beyond it blocks are dropped.
  uint64_t max_inflight_put_bytes = 256ull << 20;
  // A fetch of at least `split_fetch_bytes` is spread over up to this many
  // streams, each on its own connection.
  int fetch_streams = 4;
  uint64_t split_fetch_bytes = 8ull << 20;
  // Payload bytes per Put message and the Fetch chunk size asked for.
  uint32_t chunk_bytes = 4u << 20;
  // Verify the XXH3 checksum of every whole block fetched over a socket
  // (the data port or gRPC).
  bool verify_checksums = true;
  // The same for blocks copied from the same-host mapping. Off by default:
  // the arena is read-only to every client and the daemon hashed each block
  // as it stored it, so this guards only against a daemon bug, and it costs
  // one-block fetches a fifth of their speed with one stream, a tenth with
  // four (docs/BENCHMARKS.md).
  bool verify_local_fetches = false;
  // Fetch and put over the daemon's bulk data port (learned from Hello) when
  // it has one, falling back to gRPC on any transport error.
  bool use_data_port = true;
  // How long a data-port Lookup waits for its reply spinning (looking at
  // the socket and yielding the CPU between looks) before it sleeps in a
  // blocking read. A cached chain's answer comes within tens of
  // microseconds, and on a VM waking a sleeping thread costs about as much
  // again: spinning took a 64-key lookup's p50 from 68 to 27 us on the
  // benchmark VM (docs/BENCHMARKS.md). Zero: never spin.
  absl::Duration lookup_spin = absl::Microseconds(100);
  // On the daemon's host: map its arena (read-only) and fetch and put by
  // lease (memory speed), falling back to the data port and gRPC on any
  // error. Only for trusted workers: the mapping exposes every cached block.
  bool use_local_path = true;
  // With the local path: copy the blocks the daemon lists in its shared block
  // directory straight from the arena, with no request (the daemon learns of
  // them afterwards), and take leases only for the rest. Off: every fetch
  // takes a lease (one round trip).
  bool use_direct_reads = true;
  // With the local path: answer Lookup from the block directory (no round
  // trip) for the leading blocks it lists, asking the daemon only for the
  // rest, and not even then while the daemon says the directory lists every
  // block it caches (no NVMe or GPU tier). A namespace's first lookups ask
  // the daemon until a fetch has told the client the namespace's id.
  bool use_direct_lookups = true;
  // TLS and a bearer token for a daemon that wants them (channel_security.h).
  // With TLS the daemon serves no plaintext data port; the same-host path
  // is a Unix socket whose peer the daemon knows by uid.
  ChannelSecurity security;
};

struct ClientCounters {
  uint64_t lookups = 0;
  uint64_t lookup_errors = 0;
  uint64_t direct_lookups = 0;  // lookups answered wholly from the block directory, misses too
  uint64_t fetches = 0;
  uint64_t fetch_errors = 0;
  uint64_t fetched_bytes = 0;  // of the blocks Fetch delivered, on any path
  uint64_t data_port_fallbacks = 0;   // fetches and puts that fell back to gRPC
  uint64_t local_path_fallbacks = 0;  // ... that fell back from the same-host path
  uint64_t local_path_blocks = 0;     // blocks fetched or put over the same-host path
  uint64_t local_direct_reads = 0;    // ... fetched through the block directory (no round trip)
  uint64_t puts_sent = 0;
  uint64_t puts_dropped = 0;  // over the in-flight budget
  uint64_t put_errors = 0;
  // Keys, hits and misses by reason; requests, blocks, bytes and latency
  // per path and operation (client_metrics.h).
  ClientFigures figures;
};

class Client {
 public:
  // INVALID_ARGUMENT for bad options. Does not connect yet: a daemon that is
  // down shows up as misses.
  static absl::StatusOr<std::unique_ptr<Client>> Create(const ClientOptions& options);
  // Waits for queued puts to finish (each bounded by the deadline).
  ~Client();

  // How many leading keys of the chain `keys` are cached in namespace `ns`.
  LookupResult Lookup(const std::string& ns, absl::Span<const BlockKey> keys);
  // The same from token ids: hashes them with `schema` first.
  LookupResult LookupTokens(const KeySchema& schema, absl::Span<const uint32_t> tokens);

  // Copies cached blocks into the caller's buffers, in order, stopping at the
  // first one that is not cached. REQUIRES: each target's range lies inside
  // its block (else OUT_OF_RANGE and that target counts as a miss).
  FetchResult Fetch(const std::string& ns, absl::Span<const FetchTarget> targets);

  // Queues a chain for storing: blocks[0]'s parent is `parent` (empty for a
  // root), each later block's parent is the one before it. Copies the
  // payloads and returns at once; false if dropped over the byte budget.
  bool PutAsync(const std::string& ns, const BlockKey& parent, std::vector<PutBlock> blocks);
  // The same, synchronously: the daemon's outcome for each block.
  absl::StatusOr<std::vector<v1::PutOutcome>> Put(const std::string& ns, const BlockKey& parent,
                                                  absl::Span<const PutBlock> blocks);
  // Waits until every PutAsync so far has been sent (or failed).
  void Flush();

  ClientCounters counters() const;

  // Memory for blocks to put that the same-host daemon reads where it lies
  // (put_buffer.h): a Put of bytes in it skips one copy. FAILED_PRECONDITION
  // without a same-host path; RESOURCE_EXHAUSTED past half of the staging
  // space.
  absl::StatusOr<std::unique_ptr<PutBuffer>> NewPutBuffer(size_t bytes) {
    return PutBuffer::Create(LocalPath(), bytes);
  }

  // The same-host path to the daemon, if it is usable now (null otherwise):
  // for client/gpu_transfer.h, which takes GPU leases on it.
  std::shared_ptr<LocalPathClient> LocalPath() { return fast_paths_->Local(); }
  // A transport error on it: set it aside for a while, as Fetch does.
  void LocalPathFailed() { fast_paths_->Failed(ClientPath::kSameHost); }

 private:
  struct PutJob {
    std::string ns;
    BlockKey parent;
    std::vector<PutBlock> blocks;
    uint64_t bytes;
  };

  Client(const ClientOptions& options, std::shared_ptr<GrpcTransport> grpc,
         std::shared_ptr<const TlsContext> tls);
  // Runs `attempt(Transport&)` over the paths usable now (path_ladder.h);
  // a broken path is counted and set aside.
  template <typename Attempt>
  Transport::Outcome OverPaths(Attempt&& attempt);
  // Fetches `targets` on stream `stream`, counting in *completed the leading
  // targets written and appending their tiers.
  absl::Status FetchOneStream(int stream, const std::string& ns,
                              absl::Span<const FetchTarget> targets, size_t* completed,
                              std::vector<v1::Tier>* tiers);
  void PutLoop();

  const ClientOptions options_;

  mutable Mutex mu_;
  CondVar put_cv_;  // put_queue_ or put_busy_ changed, or stopping
  std::deque<PutJob> put_queue_ ABSL_GUARDED_BY(mu_);
  bool put_busy_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> inflight_put_bytes_{0};
  std::thread put_thread_;

  std::unique_ptr<FastPaths> fast_paths_;

  std::atomic<uint64_t> lookups_{0}, lookup_errors_{0}, direct_lookups_{0}, fetches_{0},
      fetch_errors_{0};
  std::atomic<uint64_t> fetched_bytes_{0}, puts_sent_{0}, puts_dropped_{0}, put_errors_{0};
  std::atomic<uint64_t> data_port_fallbacks_{0}, local_path_fallbacks_{0}, local_path_blocks_{0},
      local_direct_reads_{0};
  ClientMetrics metrics_;
};

template <typename Attempt>
Transport::Outcome Client::OverPaths(Attempt&& attempt) {
  return kvcache::OverPaths(
      fast_paths_->Get(),
      [this](const Transport& broken) {
        (broken.path() == ClientPath::kSameHost ? local_path_fallbacks_ : data_port_fallbacks_)
            .fetch_add(1, std::memory_order_relaxed);
        fast_paths_->Failed(broken.path());
      },
      attempt);
}

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_CLIENT_H_
