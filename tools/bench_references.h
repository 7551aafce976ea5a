// The references kvbench measures against in the same run: raw loopback TCP
// (the ceiling for any socket protocol), Redis GET of the same values, and
// Redis EXISTS of the same keys.
#ifndef KVCACHE_TOOLS_BENCH_REFERENCES_H_
#define KVCACHE_TOOLS_BENCH_REFERENCES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kvcache {

// GB/s of `value_bytes` messages sent over `connections` loopback TCP
// connections for about `duration` (receiver reads into a reused buffer).
absl::StatusOr<double> RawTcpGBps(size_t value_bytes, int connections, absl::Duration duration);

// A redis-server started on a free loopback port, stopped on destruction.
class RedisServer {
 public:
  // With these PEM files, it serves only TLS (--tls-port), with no client
  // certificates asked for.
  struct Tls {
    std::string cert, key, ca;
  };
  // NOT_FOUND if `binary` cannot be run.
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(const std::string& binary,
                                                            const Tls* tls = nullptr);
  ~RedisServer();
  int port() const { return port_; }

 private:
  RedisServer(int pid, int port) : pid_(pid), port_(port) {}
  int pid_;
  int port_;
};

// GB/s of GET for one `value_bytes` value over `connections` connections.
absl::StatusOr<double> RedisGetGBps(int port, size_t value_bytes, int connections,
                                    absl::Duration duration);

// Key checks per second of EXISTS of all of `keys` (stored first, with MSET)
// in one command per call, over `connections` connections.
absl::StatusOr<double> RedisExistsKeysPerSecond(int port, const std::vector<std::string>& keys,
                                                int connections, absl::Duration duration);

// The median microseconds of one such EXISTS over one connection. With
// `spin`, the client waits for each reply as kvcache's data-port Lookup
// does (ByteStream::AwaitReadable), so the two daemons compare like for
// like; without it, it sleeps in its read, as redis-benchmark does.
absl::StatusOr<double> RedisExistsP50Micros(int port, const std::vector<std::string>& keys,
                                            absl::Duration duration,
                                            absl::Duration spin = absl::ZeroDuration());

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_BENCH_REFERENCES_H_
