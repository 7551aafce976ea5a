// The gRPC path to a daemon: always there, slowest for bulk bytes, the last
// rung of the client's ladder. It holds the client's channels (one
// connection each, so parallel fetch streams do not share a socket) and is
// the only file in the client that uses gRPC's internal API (a Fetch reply
// read raw, so payload goes from gRPC's buffers straight into the caller's).
//
// Thread safety: all methods may be called from any thread at once.
#ifndef KVCACHE_CLIENT_GRPC_TRANSPORT_H_
#define KVCACHE_CLIENT_GRPC_TRANSPORT_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "absl/status/statusor.h"
#include "common/channel_security.h"
#include "client/transport.h"
#include "grpcpp/grpcpp.h"
#include "kvcache/v1/kvcache.grpc.pb.h"

namespace kvcache {

class GrpcTransport : public Transport {
 public:
  struct Options {
    std::string address;  // the daemon's host:port
    absl::Duration deadline = absl::Seconds(5);  // of every call
    int streams = 1;                      // channels, each its own connection
    uint32_t chunk_bytes = 4u << 20;      // payload bytes per Put message
    bool verify_checksums = true;         // of whole fetched blocks
    ChannelSecurity security;             // TLS and token (channel_security.h)
  };

  // Makes the channels (connecting on the first call); INVALID_ARGUMENT as
  // MakeChannel says (an unreadable PEM file, a token in the clear).
  static absl::StatusOr<std::shared_ptr<GrpcTransport>> Create(const Options& options);

  ClientPath path() const override { return ClientPath::kGrpc; }
  // call.stream picks the channel (modulo the number of streams).
  Outcome Fetch(const FetchCall& call, absl::Span<const FetchTarget> targets,
                FetchProgress* progress) override;
  Outcome Put(const std::string& ns, const BlockKey& parent, absl::Span<const PutBlock> blocks,
              std::vector<v1::PutOutcome>* outcomes) override;
  // Sends packed keys once a Hello said the daemon reads them (asks Hello
  // itself if none has yet).
  Outcome Lookup(const std::string& ns, absl::Span<const BlockKey> keys,
                 LookupResult* result) override;

  // Asks the daemon's Hello (its paths and what it reads) and remembers
  // whether it reads packed lookup keys.
  absl::Status Hello(v1::HelloResponse* hello);

 private:
  explicit GrpcTransport(const Options& options) : options_(options) {}

  const Options options_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;  // [0] also serves unary calls
  std::unique_ptr<v1::KvCache::Stub> stub_;
  // From the last Hello: -1 not asked yet, else whether packed_keys are read.
  std::atomic<int> packed_lookup_{-1};
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_GRPC_TRANSPORT_H_
