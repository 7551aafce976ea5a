// Starts a real single-member etcd (Debian's etcd-server) on free loopback
// ports in a fresh data directory, for tests and kvbench, and stops it.
#ifndef KVCACHE_TOOLS_ETCD_PROCESS_H_
#define KVCACHE_TOOLS_ETCD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kvcache {

class EtcdProcess {
 public:
  // Runs etcd (from $PATH or /usr/bin) and waits until it answers a read.
  // NOT_FOUND when etcd is not installed (tools/scripts/install_deps.sh).
  // With `tls`, its client endpoint speaks only TLS with that certificate
  // and demands client certificates `ca` signed (--client-cert-auth).
  struct Tls {
    std::string cert, key, ca;
  };
  // `extra_flags` go to etcd as they are (--auth-token-ttl=1).
  static absl::StatusOr<std::unique_ptr<EtcdProcess>> Start(
      const Tls* tls = nullptr, std::vector<std::string> extra_flags = {});
  // Kills etcd if still running and removes its data directory.
  ~EtcdProcess();

  // host:port of its client (gRPC) endpoint.
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(client_port_); }
  // SIGKILL and wait, keeping the data directory: an outage.
  void Kill();
  // Starts it again on the same ports and data; waits until it answers.
  absl::Status Restart();

 private:
  EtcdProcess(std::string data_dir, int client_port, int peer_port, int health_port,
              std::optional<Tls> tls, std::vector<std::string> extra_flags)
      : data_dir_(std::move(data_dir)),
        client_port_(client_port),
        peer_port_(peer_port),
        health_port_(health_port),
        tls_(std::move(tls)),
        extra_flags_(std::move(extra_flags)) {}
  absl::Status Spawn();

  const std::string data_dir_;
  const int client_port_;
  const int peer_port_;
  const int health_port_;  // plain HTTP /health (--listen-metrics-urls)
  const std::optional<Tls> tls_;
  const std::vector<std::string> extra_flags_;
  pid_t pid_ = 0;
};

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_ETCD_PROCESS_H_
