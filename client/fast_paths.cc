#include "client/fast_paths.h"

#include <netdb.h>

#include <cstring>

namespace kvcache {

constexpr absl::Duration kSetAside = absl::Seconds(5);

FastPaths::Set FastPaths::Get() {
  if (!options_.use_local_path && !options_.use_data_port) return {};
  MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  if (!KnowHello().ok()) return {};  // ask again later
  if (options_.use_local_path && local_ == nullptr && now >= local_retry_after_ &&
      !hello_.local_socket().empty()) {
    // Connecting proves the daemon is on this host; the welcome's instance id
    // proves it is the same daemon; a refusal (uid not allowed) sets it aside.
    auto local = LocalPathClient::Connect(hello_.local_socket(), hello_.instance_id(),
                                          options_.timeout, options_.use_direct_reads);
    if (local.ok()) {
      local_ = std::move(*local);
    } else {
      local_retry_after_ = now + kSetAside;
    }
  }
  if (options_.use_data_port && data_port_ == nullptr && now >= data_port_retry_after_ &&
      hello_.data_port() != 0) {
    data_port_ = MakeDataPort(hello_.data_port());
    if (data_port_ == nullptr) data_port_retry_after_ = now + kSetAside;
  }
  return Set{options_.use_local_path ? local_ : nullptr,
             options_.use_data_port ? data_port_ : nullptr, hello_.data_port_lookup()};
}

absl::Status FastPaths::KnowHello() {
  if (hello_known_) return absl::OkStatus();
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  const grpc::Status s = stub_->Hello(&ctx, v1::HelloRequest(), &hello_);
  if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  hello_known_ = true;
  return absl::OkStatus();
}

absl::StatusOr<bool> FastPaths::PackedLookup() {
  MutexLock lock(&mu_);
  if (absl::Status s = KnowHello(); !s.ok()) return s;
  return hello_.packed_lookup();
}

std::shared_ptr<DataPortClient> FastPaths::MakeDataPort(uint32_t port) const {
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
  return std::make_shared<DataPortClient>(addr, len, options_.timeout,
                                          options_.max_idle_connections);
}

void FastPaths::LocalFailed() {
  MutexLock lock(&mu_);
  local_.reset();
  hello_known_ = false;
  local_retry_after_ = absl::Now() + kSetAside;
}

void FastPaths::DataPortFailed() {
  MutexLock lock(&mu_);
  data_port_.reset();
  hello_known_ = false;
  data_port_retry_after_ = absl::Now() + kSetAside;
}

}  // namespace kvcache
