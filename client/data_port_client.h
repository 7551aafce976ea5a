// Client side of the bulk data port (proto/data_port_wire.h): a small pool of
// TCP connections to one daemon, and a fetch that reads payload bytes with
// recv straight into the caller's buffers. Errors of the transport (cannot
// connect, connection cut, garbage) are reported as such, so the caller can
// fall back to gRPC; a status sent by the daemon is its answer.
//
// Thread safety: all methods may be called from any thread; each fetch uses
// a connection of its own.
#ifndef KVCACHE_CLIENT_DATA_PORT_CLIENT_H_
#define KVCACHE_CLIENT_DATA_PORT_CLIENT_H_

#include <sys/socket.h>

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "common/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "kvcache/v1/kvcache.pb.h"

namespace kvcache {

struct FetchTarget;
struct PutBlock;

class DataPortClient {
 public:
  // `address` is the daemon's socket address for the data port.
  DataPortClient(const sockaddr_storage& address, socklen_t address_len, absl::Duration timeout,
                 size_t max_idle);
  ~DataPortClient();

  struct Outcome {
    absl::Status status;
    // True if the transport failed (the request may be retried over gRPC).
    bool transport_failed = false;
  };

  // Sends `request` (whose items match `targets`) and reads the reply into
  // the targets in order; `completed` counts the leading targets fully
  // written (and, with `verify`, checksum-verified); the tier each came
  // from is appended to `tiers`.
  Outcome Fetch(const v1::FetchRequest& request, absl::Span<const FetchTarget> targets, bool verify,
                size_t* completed, std::vector<v1::Tier>* tiers);

  // Sends the LookupRequest whose wire bytes follow 8 bytes of room at the
  // start of `*wire` and parses the daemon's answer into `response`; the
  // buffer is reused for the answer (a caller keeps one per thread). Only
  // for a daemon whose Hello says data_port_lookup.
  Outcome Lookup(std::string* wire, v1::LookupResponse* response);

  // Sends the chain `blocks` (block i's parent is block i-1, the first's is
  // `parent`) as pipelined puts, payloads straight from the caller's memory,
  // and reads the daemon's results in order into `outcomes` (one per block
  // acknowledged). A daemon error (e.g. DATA_LOSS) ends the call with it.
  Outcome Put(const std::string& ns, const std::string& parent,
              absl::Span<const PutBlock> blocks, std::vector<v1::PutOutcome>* outcomes);

 private:
  int Acquire();
  void Release(int fd);

  const sockaddr_storage address_;
  const socklen_t address_len_;
  const absl::Duration timeout_;
  const size_t max_idle_;
  Mutex mu_;
  std::vector<int> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_DATA_PORT_CLIENT_H_
