#include "client/fast_paths.h"

#include <netdb.h>

#include <cstring>

namespace kvcache {

constexpr absl::Duration kSetAside = absl::Seconds(5);

FastPaths::Ladder FastPaths::Get() {
  Ladder ladder;
  if (options_.use_local_path || options_.use_data_port) {
    MutexLock lock(&mu_);
    if (Refresh()) {
      if (local_ != nullptr) ladder.push_back(local_);
      if (data_port_ != nullptr) ladder.push_back(data_port_);
    }
  }
  ladder.push_back(grpc_);
  return ladder;
}

std::shared_ptr<LocalPathClient> FastPaths::Local() {
  if (!options_.use_local_path) return nullptr;
  MutexLock lock(&mu_);
  return Refresh() ? local_ : nullptr;
}

bool FastPaths::Refresh() {
  if (!KnowHello().ok()) return false;  // ask again later
  const absl::Time now = absl::Now();
  if (options_.use_local_path && local_ == nullptr && now >= local_retry_after_ &&
      !hello_.local_socket().empty()) {
    // Connecting proves the daemon is on this host; the welcome's instance id
    // proves it is the same daemon; a refusal (uid not allowed) sets it aside.
    LocalPathClient::Options local = options_.local;
    local.timeout = options_.timeout;
    local.tenant = hello_.tenant();
    auto connected = LocalPathClient::Connect(hello_.local_socket(), hello_.instance_id(), local);
    if (connected.ok()) {
      local_ = std::move(*connected);
    } else {
      local_retry_after_ = now + kSetAside;
    }
  }
  if (options_.use_data_port && data_port_ == nullptr && now >= data_port_retry_after_ &&
      hello_.data_port() != 0) {
    data_port_ = MakeDataPort(hello_.data_port(), hello_.data_port_lookup());
    if (data_port_ == nullptr) data_port_retry_after_ = now + kSetAside;
  }
  return true;
}

absl::Status FastPaths::KnowHello() {
  if (hello_known_) return absl::OkStatus();
  if (absl::Status s = grpc_->Hello(&hello_); !s.ok()) return s;
  hello_known_ = true;
  return absl::OkStatus();
}

std::shared_ptr<DataPortClient> FastPaths::MakeDataPort(uint32_t port, bool serves_lookup) const {
  // The data port listens on the daemon's gRPC host.
  const std::string& address = options_.address;
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) {
    return nullptr;
  }
  sockaddr_storage addr{};
  std::memcpy(&addr, found->ai_addr, found->ai_addrlen);
  const socklen_t len = found->ai_addrlen;
  freeaddrinfo(found);
  DataPortClient::Options data_port;
  data_port.timeout = options_.timeout;
  data_port.max_idle = options_.max_idle_connections;
  data_port.verify_checksums = options_.verify_checksums;
  data_port.serves_lookup = serves_lookup;
  data_port.lookup_spin = options_.lookup_spin;
  data_port.tls = options_.tls;
  data_port.server_name = options_.tls_server_name.empty() ? host : options_.tls_server_name;
  data_port.token = options_.token;
  data_port.act_for_tenant = options_.act_for_tenant;
  return std::make_shared<DataPortClient>(addr, len, data_port);
}

void FastPaths::Failed(ClientPath path) {
  MutexLock lock(&mu_);
  if (path == ClientPath::kSameHost) {
    local_.reset();
    local_retry_after_ = absl::Now() + kSetAside;
  } else if (path == ClientPath::kDataPort) {
    data_port_.reset();
    data_port_retry_after_ = absl::Now() + kSetAside;
  } else {
    return;
  }
  hello_known_ = false;
}

}  // namespace kvcache
