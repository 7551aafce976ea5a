// Client side of the bulk data port (proto/data_port_wire.h): a small pool of
// TCP connections to one daemon, each call on one of its own. Errors of the
// transport (cannot connect, connection cut, garbage) are reported as such,
// so the caller can fall back to gRPC; a status sent by the daemon, or a
// deadline it let pass, is its answer.
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
#include "client/transport.h"
#include "common/byte_stream.h"
#include "common/tls_stream.h"
#include "kvcache/v1/kvcache.pb.h"

namespace kvcache {

class DataPortClient : public Transport {
 public:
  struct Options {
    absl::Duration timeout = absl::Seconds(5);  // every read and write: the deadline
    size_t max_idle = 8;           // idle connections kept for later calls
    bool verify_checksums = true;  // of whole fetched blocks
    bool serves_lookup = false;    // the daemon's Hello says data_port_lookup
    // A lookup spins this long for its reply before a blocking read
    // (ByteStream::AwaitReadable).
    absl::Duration lookup_spin = absl::ZeroDuration();
    // TLS on every connection (null: plaintext), checking the daemon's
    // certificate names `server_name`.
    std::shared_ptr<const TlsContext> tls;
    std::string server_name;
    // Sent first on every connection (proto/data_port_wire.h) when either
    // is not empty: the token, and the tenant an admin acts for.
    std::string token;
    std::string act_for_tenant;
  };
  // `address` is the daemon's socket address for the data port.
  DataPortClient(const sockaddr_storage& address, socklen_t address_len, const Options& options);
  ~DataPortClient() override;

  ClientPath path() const override { return ClientPath::kDataPort; }
  // Reads payload bytes with recv straight into the targets, hashing each
  // piece while it is in cache.
  Outcome Fetch(const FetchCall& call, absl::Span<const FetchTarget> targets,
                FetchProgress* progress) override;
  // Pipelined puts, payloads straight from the caller's memory.
  Outcome Put(const std::string& ns, const BlockKey& parent, absl::Span<const PutBlock> blocks,
              std::vector<v1::PutOutcome>* outcomes) override;
  // Partial (nothing answered) where the daemon does not serve lookups here.
  Outcome Lookup(const std::string& ns, absl::Span<const BlockKey> keys,
                 LookupResult* result) override;

 private:
  // A connection, secured and authenticated as the options say; null if
  // that fails (the call then goes over gRPC, which says why).
  std::unique_ptr<ByteStream> Acquire();
  void Release(std::unique_ptr<ByteStream> stream);
  // Sends the token (and tenant acted for) and reads the daemon's verdict;
  // true when accepted.
  bool Authenticate(ByteStream& stream) const;
  // The rest of a fetch's END frame, whose first 12 bytes are `frame`: the
  // daemon's status, and `fd` back to the pool (or closed, if the frame is
  // bad).
  Outcome ReadEnd(std::unique_ptr<ByteStream> stream, const uint8_t* frame);
  // Sends the LookupRequest whose wire bytes follow 8 bytes of room at the
  // start of `*wire` and parses the answer into `response`; the buffer is
  // reused for the answer.
  Outcome ExchangeLookup(std::string* wire, v1::LookupResponse* response);

  const sockaddr_storage address_;
  const socklen_t address_len_;
  const Options options_;
  Mutex mu_;
  std::vector<std::unique_ptr<ByteStream>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_DATA_PORT_CLIENT_H_
