// One way from a client to a daemon: the same-host socket and mapping
// (client/local_path_client.h), the bulk data port (client/data_port_client.h)
// or gRPC (client/grpc_transport.h). The client asks them fastest first
// (client/fast_paths.h): a path whose transport breaks is set aside, and the
// next one continues from where it stopped, so every call reports how far
// it got as well as how it ended.
//
// Thread safety: every implementation may be called from any thread.
#ifndef KVCACHE_CLIENT_TRANSPORT_H_
#define KVCACHE_CLIENT_TRANSPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "client/client_metrics.h"
#include "client/requests.h"
#include "key/block_key.h"
#include "kvcache/v1/kvcache.pb.h"

namespace kvcache {

class Transport {
 public:
  struct Outcome {
    absl::Status status;
    // The transport broke (cannot connect, connection cut, garbage): the
    // caller sets this path aside and asks the next one for the rest. A
    // status the daemon sent, or a deadline it let pass, is its answer.
    bool transport_failed = false;
    // No error, but only the leading part is answered (the same-host block
    // directory lists some keys of a lookup): the next path continues, and
    // this one is not set aside.
    bool partial = false;
  };

  // What a fetch is asked on every path.
  struct FetchCall {
    const std::string& ns;
    uint32_t chunk_bytes = 0;  // reply chunks asked for, where the path has chunks
    int stream = 0;            // which of the client's streams carries it
  };
  // How far a fetch got.
  struct FetchProgress {
    size_t completed = 0;  // leading targets fully written (and verified, if asked)
    size_t direct = 0;     // of them, copied with no request (the block directory)
    std::vector<v1::Tier>* tiers = nullptr;  // the tier each came from is appended
  };

  virtual ~Transport() = default;

  // Which path this is, for the client's figures.
  virtual ClientPath path() const = 0;

  // Copies the targets' bytes, in order, into their buffers, stopping at
  // the first one that is not cached (then OK: a shorter run is a miss).
  virtual Outcome Fetch(const FetchCall& call, absl::Span<const FetchTarget> targets,
                        FetchProgress* progress) = 0;

  // Stores the chain `blocks` (block i's parent is block i-1, the first's
  // is `parent`, empty for a root). Appends the daemon's outcome of each
  // block it acknowledged to *outcomes; a daemon error (DATA_LOSS, say)
  // ends the call with it.
  virtual Outcome Put(const std::string& ns, const BlockKey& parent,
                      absl::Span<const PutBlock> blocks,
                      std::vector<v1::PutOutcome>* outcomes) = 0;

  // Appends to *result how many leading `keys` are cached, with the size and
  // tier of each (result->hits grows by that many). INTERNAL if the daemon's
  // answer does not add up.
  virtual Outcome Lookup(const std::string& ns, absl::Span<const BlockKey> keys,
                         LookupResult* result) = 0;
};

// The FetchRequest for `targets`, as every path sends it: one item per
// target, its offset and length.
v1::FetchRequest MakeFetchRequest(const Transport::FetchCall& call,
                                  absl::Span<const FetchTarget> targets);

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_TRANSPORT_H_
