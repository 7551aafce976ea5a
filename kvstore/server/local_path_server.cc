#include "kvstore/server/local_path_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/types/span.h"
#include "common/socket_io.h"
#include "kvcache/v1/local.pb.h"
#include "kvstore/server/local_session.h"
#include "kvstore/store/staging_space.h"
#include "proto/local_message_io.h"
#include "proto/local_wire.h"

namespace kvcache {
namespace {

// The welcome travels with its fds attached (SCM_RIGHTS): the arena's
// (sealed: the client can only map it read-only), the connection's staging
// memfd, the block directory's (sealed too) if there is one, and a GPU pool
// in host memory's (sealed) if there is one.
bool SendWelcome(int fd, const v1::LocalWelcome& welcome, absl::Span<const int> fds) {
  const std::string bytes = welcome.SerializeAsString();
  uint32_t head[2] = {static_cast<uint32_t>(LocalMessage::kWelcome),
                      static_cast<uint32_t>(bytes.size())};
  iovec iov[2] = {{head, sizeof(head)}, {const_cast<char*>(bytes.data()), bytes.size()}};
  constexpr size_t kMaxFds = 4;
  const size_t fds_bytes = std::min(fds.size(), kMaxFds) * sizeof(int);
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxFds * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(fds_bytes);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(fds_bytes);
  std::memcpy(CMSG_DATA(cmsg), fds.data(), fds_bytes);
  const ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL);
  if (w < 0) return false;
  // The fds went with the first byte; finish any short write without them.
  size_t sent = static_cast<size_t>(w);
  if (sent < sizeof(head)) {
    iov[0].iov_base = reinterpret_cast<char*>(head) + sent;
    iov[0].iov_len -= sent;
    return WriteFullV(fd, iov, 2);
  }
  iov[1].iov_base = const_cast<char*>(bytes.data()) + (sent - sizeof(head));
  iov[1].iov_len = bytes.size() - (sent - sizeof(head));
  return iov[1].iov_len == 0 || WriteFullV(fd, &iov[1], 1);
}

// A refusal, with its reason, before any welcome.
void Refuse(int fd, const absl::Status& why) {
  v1::LocalResult refused;
  refused.set_status_code(static_cast<int32_t>(why.code()));
  refused.set_status_message(std::string(why.message()));
  WriteLocalMessage(fd, LocalMessage::kRefused, refused);
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalPathServer>> LocalPathServer::Start(ServiceContext& service,
                                                                        const Options& options) {
  if (service.store.arena().fd() < 0 || !service.store.arena().sealed()) {
    return absl::FailedPreconditionError(
        "the host arena is not a sealed memfd (Linux 5.1 or later), so it cannot be shared "
        "read-only with local clients");
  }
  if (options.staging_bytes < service.limits.max_block_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "local staging space (", options.staging_bytes, " bytes) must hold the largest block (",
        service.limits.max_block_bytes, " bytes)"));
  }
  sockaddr_un addr{};
  if (options.path.empty() || options.path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("local socket path '", options.path, "' is empty or too long"));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, options.path.c_str(), options.path.size());
  struct stat st;
  if (lstat(options.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    unlink(options.path.c_str());  // left by a daemon that did not stop cleanly
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 128) != 0) {
    const int err = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.path, ": ", std::strerror(err)));
  }
  chmod(options.path.c_str(), 0660);  // the credential check below is the real gate
  std::unique_ptr<LocalPathServer> server(new LocalPathServer(service, options));
  if (GpuTier* gpu = service.store.gpu(); gpu != nullptr) {
    absl::StatusOr<DevicePagePool::Share> share = gpu->memory().pool().Export();
    if (share.ok()) {
      server->gpu_share_ = *std::move(share);
    } else {
      server->gpu_unshared_ = std::string(share.status().message());
    }
  } else {
    server->gpu_unshared_ = "no GPU tier";
  }
  server->connections_ = std::make_unique<ConnectionThreads>(
      fd, options.max_connections, [s = server.get()](int conn) { s->Serve(conn); });
  return server;
}

LocalPathServer::~LocalPathServer() { Shutdown(); }

void LocalPathServer::Shutdown() {
  if (connections_ == nullptr) return;
  connections_->Shutdown();
  connections_.reset();
  unlink(options_.path.c_str());
}

bool LocalPathServer::Allowed(int fd, std::string* who, uid_t* uid) const {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  *who = absl::StrCat("uid ", cred.uid, " gid ", cred.gid, " pid ", cred.pid);
  *uid = cred.uid;
  const auto& uids = options_.allowed_uids;
  const auto& gids = options_.allowed_gids;
  return std::find(uids.begin(), uids.end(), cred.uid) != uids.end() ||
         std::find(gids.begin(), gids.end(), cred.gid) != gids.end();
}

void LocalPathServer::Serve(int fd) {
  std::string who;
  uid_t uid = 0;
  if (!Allowed(fd, &who, &uid)) {
    Refuse(fd, absl::PermissionDeniedError(absl::StrCat(
                   who, " may not use the same-host path (see --local_allowed_uids)")));
    return;
  }
  LocalSession::Options session;
  if (service_.auth != nullptr) {
    absl::StatusOr<Identity> identity = service_.auth->OfLocalPeer(uid);
    if (!identity.ok()) {
      Refuse(fd, identity.status());
      return;
    }
    session.identity = *std::move(identity);
  }
  absl::StatusOr<std::unique_ptr<StagingSpace>> staging =
      StagingSpace::Create(options_.staging_bytes);
  if (!staging.ok()) {
    Refuse(fd, staging.status());
    return;
  }
  v1::LocalWelcome welcome = Welcome(**staging);
  welcome.set_tenant(session.identity.tenant);
  if (!SendWelcome(fd, welcome, Fds(**staging))) return;
  session.lease_ttl = options_.lease_ttl;
  session.stall_timeout = options_.stall_timeout;
  session.gpu_shared = gpu_share_.has_value();
  session.follow_cpu = options_.follow_cpu;
  LocalSession(service_, session, fd, *std::move(staging)).Run();
}

v1::LocalWelcome LocalPathServer::Welcome(const StagingSpace& staging) const {
  const HostArena& arena = service_.store.arena();
  v1::LocalWelcome welcome;
  welcome.set_instance_id(options_.instance_id);
  welcome.set_arena_bytes(arena.capacity_bytes());
  welcome.set_page_bytes(arena.page_bytes());
  welcome.set_staging_bytes(staging.size());
  welcome.set_put_staged(true);
  welcome.set_follows_cpu(options_.follow_cpu);
  if (const BlockDirectory* directory = service_.store.directory(); directory != nullptr) {
    welcome.set_directory_bytes(directory->bytes());
  }
  if (gpu_share_.has_value()) {
    const DevicePagePool& pool = service_.store.gpu()->memory().pool();
    welcome.set_gpu_pool_bytes(pool.bytes());
    welcome.set_gpu_page_bytes(pool.page_bytes());
    welcome.set_gpu_ipc_handle(gpu_share_->ipc_handle);
    welcome.set_gpu_pci_bus_id(gpu_share_->pci_bus_id);
    welcome.set_gpu_pool_fd(gpu_share_->memfd >= 0);
  }
  return welcome;
}

std::vector<int> LocalPathServer::Fds(const StagingSpace& staging) const {
  std::vector<int> fds = {service_.store.arena().fd(), staging.fd()};
  if (const BlockDirectory* directory = service_.store.directory(); directory != nullptr) {
    fds.push_back(directory->fd());
  }
  if (gpu_share_.has_value() && gpu_share_->memfd >= 0) fds.push_back(gpu_share_->memfd);
  return fds;
}

}  // namespace kvcache
