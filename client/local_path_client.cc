#include "client/local_path_client.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "client/fetch_receiver.h"
#include "key/checksum.h"
#include "client/put_header.h"
#include "common/bulk_copy.h"
#include "common/cpu_pin.h"
#include "common/huge_pages.h"
#include "common/socket_io.h"
#include "proto/local_message_io.h"

namespace kvcache {
namespace {

// A fetch this large is copied with non-temporal stores: it cannot stay in
// cache anyway (a core's share of a 32 MiB L3 here), and its consumer (a
// GPU's DMA) reads memory. Smaller fetches keep ordinary stores, which leave
// the bytes in cache for the caller. Measured with 2 MiB blocks (kvbench,
// docs/BENCHMARKS.md): ordinary stores made 1-block fetches 1.06x (1 stream)
// and 1.39x (4 streams) faster; streaming kept 8-block fetches 1.0-1.1x
// faster than memcpy.
constexpr size_t kStreamingFetchBytes = 8 << 20;

// Direct reads are reported at most this long after they happen, or at once
// when this many distinct blocks wait: the daemon's LRU order and hit counts
// lag by no more.
constexpr absl::Duration kReportDelay = absl::Milliseconds(20);
constexpr size_t kReportMaxBlocks = 256;

// Staging ranges a kPutStaged client picks start on page boundaries, as the
// daemon's own reservations do.
constexpr uint64_t kStagingAlign = 4096;

constexpr size_t kWelcomeFds = LocalPathClient::kWelcomeFds;

// Reads the welcome, a framed message, with up to kWelcomeFds SCM_RIGHTS
// fds in `fds_out` (any others are closed), leaving -1 where none came.
// Later replies go through the client's read-ahead (ReadReply); nothing is
// read ahead before this one, whose fds ride with its first byte.
bool ReadWelcomeMessage(int fd, uint32_t* type, std::string* body, int (*fds_out)[kWelcomeFds]) {
  uint32_t head[2];
  alignas(cmsghdr) char control[CMSG_SPACE((kWelcomeFds + 1) * sizeof(int))] = {};
  iovec iov = {head, sizeof(head)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t r = recvmsg(fd, &msg, MSG_WAITALL | MSG_CMSG_CLOEXEC);
  if (r <= 0) return false;
  size_t taken = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; ++i) {
      int got;
      std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (taken < kWelcomeFds) {
        (*fds_out)[taken++] = got;
      } else {
        close(got);
      }
    }
  }
  if (static_cast<size_t>(r) < sizeof(head) &&
      !ReadFull(fd, reinterpret_cast<char*>(head) + r, sizeof(head) - r)) {
    return false;
  }
  if (head[1] > kMaxLocalMessageBytes) return false;
  *type = head[0];
  body->resize(head[1]);
  return ReadFull(fd, body->data(), body->size());
}

}  // namespace

bool LocalPathClient::ReadReply(uint32_t* type, std::string* body) {
  uint32_t head[2];
  if (!replies_.ReadFull(head, sizeof(head)) || head[1] > kMaxLocalMessageBytes) return false;
  *type = head[0];
  body->resize(head[1]);
  return replies_.ReadFull(body->data(), body->size());
}

absl::Status LocalPathClient::StatusOf(int32_t code, const std::string& message) {
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

absl::StatusOr<std::unique_ptr<LocalPathClient>> LocalPathClient::Connect(
    const std::string& path, const std::string& instance_id, const Options& options) {
  absl::StatusOr<int> connected = ConnectSocket(path, options.timeout);
  if (!connected.ok()) return connected.status();
  const int fd = *connected;
  // The arena, the staging space, then the directory and a GPU pool in host
  // memory, each if the welcome says it came.
  int fds[kWelcomeFds] = {-1, -1, -1, -1};
  auto close_fds = [&] {
    for (int f : fds) {
      if (f >= 0) close(f);  // a mapping keeps its memory
    }
  };
  absl::StatusOr<v1::LocalWelcome> welcome = ReadWelcome(fd, instance_id, &fds);
  if (welcome.ok() && !options.tenant.empty() && welcome->tenant() != options.tenant) {
    welcome = absl::FailedPreconditionError(absl::StrCat(
        "the same-host path would serve tenant '", welcome->tenant(), "' (by uid), this client is '",
        options.tenant, "' (by its token): using the network paths"));
  }
  if (!welcome.ok()) {
    close(fd);
    close_fds();
    return welcome.status();
  }
  // Read-only: the daemon sealed the arena, so a writable mapping would fail.
  // 2 MiB-aligned, so the arena's huge pages map whole.
  void* arena = MapSharedAligned(fds[0], welcome->arena_bytes(), PROT_READ);
  void* staging = mmap(nullptr, welcome->staging_bytes(), PROT_READ | PROT_WRITE, MAP_SHARED,
                       fds[1], 0);
  if (arena == MAP_FAILED || staging == MAP_FAILED) {
    if (arena != MAP_FAILED) munmap(arena, welcome->arena_bytes());
    if (staging != MAP_FAILED) munmap(staging, welcome->staging_bytes());
    close(fd);
    close_fds();
    return absl::UnavailableError("cannot map the daemon's arena and staging space");
  }
  // Huge pages: copies out of the arena ran 1.6-1.9x faster here with 2 MiB
  // pages than with 4 KiB ones (TLB misses are dear under virtualization).
  // Where the daemon collapsed the arena they are already in the file; this
  // asks for them where the kernel's settings decide. Best effort.
  madvise(arena, welcome->arena_bytes(), MADV_HUGEPAGE);
  std::unique_ptr<LocalPathClient> client(
      new LocalPathClient(options, fd, static_cast<const uint8_t*>(arena), welcome->arena_bytes(),
                          static_cast<uint8_t*>(staging), welcome->staging_bytes()));
  client->follows_cpu_ = welcome->follows_cpu();
  if (welcome->put_staged()) {
    client->put_staged_ = true;
    MutexLock lock(&client->staging_mu_);
    client->staging_ranges_ = std::make_unique<RangeAllocator>(
        welcome->staging_bytes() / kStagingAlign * kStagingAlign, kStagingAlign);
  }
  const int directory_fd = welcome->directory_bytes() > 0 ? fds[2] : -1;
  const int gpu_pool_fd =
      welcome->gpu_pool_fd() ? fds[welcome->directory_bytes() > 0 ? 3 : 2] : -1;
  if (options.direct_reads && directory_fd >= 0) {
    client->MapDirectory(directory_fd, welcome->directory_bytes());
  }
  if (welcome->gpu_pool_bytes() > 0) client->MapGpuPool(*welcome, gpu_pool_fd);
  close_fds();
  return client;
}

absl::StatusOr<int> LocalPathClient::ConnectSocket(const std::string& path,
                                                    absl::Duration timeout) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::UnavailableError("no usable local socket path");
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("cannot connect to ", path));
  }
  return fd;
}

absl::StatusOr<v1::LocalWelcome> LocalPathClient::ReadWelcome(int fd,
                                                              const std::string& instance_id,
                                                              int (*fds)[kWelcomeFds]) {
  uint32_t type = 0;
  std::string body;
  if (!ReadWelcomeMessage(fd, &type, &body, fds)) {
    return absl::UnavailableError("no welcome on the local socket");
  }
  if (static_cast<LocalMessage>(type) == LocalMessage::kRefused) {
    v1::LocalResult refused;
    refused.ParseFromString(body);
    return StatusOf(refused.status_code(), refused.status_message());
  }
  v1::LocalWelcome welcome;
  if (static_cast<LocalMessage>(type) != LocalMessage::kWelcome || !welcome.ParseFromString(body) ||
      (*fds)[0] < 0 || (*fds)[1] < 0 || welcome.instance_id() != instance_id) {
    return absl::UnavailableError("the local socket belongs to another daemon");
  }
  return welcome;
}

void LocalPathClient::MapDirectory(int fd, uint64_t bytes) {
  // The block directory is an optimization: if it cannot be used, fetches
  // take leases as before.
  void* directory = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (directory == MAP_FAILED) return;
  auto reader = BlockDirectoryReader::Create(static_cast<const uint8_t*>(directory), bytes,
                                             arena_, arena_size_);
  if (!reader.ok()) {
    munmap(directory, bytes);
    return;
  }
  directory_map_ = static_cast<const uint8_t*>(directory);
  directory_size_ = bytes;
  directory_ = *std::move(reader);
  reporter_ = std::make_unique<DirectReadReporter>(
      [this](const v1::DirectReadReport& report) { SendReport(report); }, kReportDelay,
      kReportMaxBlocks);
}

void LocalPathClient::MapGpuPool(const v1::LocalWelcome& welcome, int fd) {
  auto pool = std::make_unique<GpuPool>();
  pool->bytes = welcome.gpu_pool_bytes();
  pool->page_bytes = welcome.gpu_page_bytes();
  pool->ipc_handle = welcome.gpu_ipc_handle();
  pool->pci_bus_id = welcome.gpu_pci_bus_id();
  void* mapped =
      fd >= 0 ? mmap(nullptr, pool->bytes, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
  if (mapped != MAP_FAILED) pool->host_mapping = static_cast<const uint8_t*>(mapped);
  // A pool in host memory that cannot be mapped is of no use.
  if (!pool->ipc_handle.empty() || pool->host_mapping != nullptr) gpu_pool_ = std::move(pool);
}

LocalPathClient::~LocalPathClient() {
  // Both send what they still hold while the socket is open.
  reporter_.reset();
  owed_releases_.reset();
  if (directory_map_ != nullptr) munmap(const_cast<uint8_t*>(directory_map_), directory_size_);
  if (gpu_pool_ != nullptr && gpu_pool_->host_mapping != nullptr) {
    munmap(const_cast<uint8_t*>(gpu_pool_->host_mapping), gpu_pool_->bytes);
  }
  munmap(const_cast<uint8_t*>(arena_), arena_size_);
  munmap(staging_, staging_size_);
  close(fd_);
}

LocalPathClient::Outcome LocalPathClient::Call(LocalMessage type,
                                               const google::protobuf::Message& body,
                                               LocalMessage expect,
                                               google::protobuf::Message* reply) {
  MutexLock lock(&mu_);
  // The daemon answers from the CPU this thread waits on; a put's thread
  // stays there until the answer (common/cpu_pin.h says why only a put's).
  std::optional<CurrentCpuPin> pin;
  if (follows_cpu_ && (type == LocalMessage::kPutStaged || type == LocalMessage::kPutCommit)) {
    pin.emplace();
  }
  const int cpu = !follows_cpu_ ? -1 : pin.has_value() ? pin->cpu() : sched_getcpu();
  uint32_t got = 0;
  std::string bytes;
  errno = 0;  // so that EAGAIN below can only be this exchange's timeout
  const std::string releases = owed_releases_->Take();
  const bool answered = WriteLocalMessage(fd_, type, body, cpu, releases) &&
                        ReadReply(&got, &bytes);
  if (!answered || static_cast<LocalMessage>(got) != expect || !reply->ParseFromString(bytes)) {
    const bool timed_out = !answered && (errno == EAGAIN || errno == EWOULDBLOCK);
    shutdown(fd_, SHUT_RDWR);  // out of step now: no later call may use it
    // A daemon that did not answer within the deadline (the socket's
    // timeout) would not answer on another path either: one deadline, not
    // one per path.
    if (timed_out) {
      return Outcome{absl::DeadlineExceededError("local socket: no answer within the deadline"),
                     false};
    }
    return Outcome{absl::UnavailableError("local socket: broken exchange"), true};
  }
  return Outcome{absl::OkStatus(), false};
}

absl::StatusOr<LocalPathClient::GpuLease> LocalPathClient::LeaseGpuBlocks(
    const v1::FetchRequest& request) {
  if (gpu_pool_ == nullptr) {
    return absl::FailedPreconditionError("the daemon shares no GPU pool with this client");
  }
  v1::LocalLease reply;
  Outcome sent = Call(LocalMessage::kGpuLease, request, LocalMessage::kLease, &reply);
  if (!sent.status.ok()) return sent.status;
  if (reply.status_code() != 0) return StatusOf(reply.status_code(), reply.status_message());
  GpuLease lease;
  lease.lease_id = reply.lease_id();
  for (v1::LeasedItem& item : *reply.mutable_items()) {
    const bool in_order = item.item_index() == lease.items.size() &&
                          item.item_index() < static_cast<uint32_t>(request.items_size());
    const uint64_t length = in_order && request.items(item.item_index()).length() != 0
                                ? request.items(item.item_index()).length()
                                : item.block_size() - std::min(item.block_size(), item.offset());
    if (!in_order || !ExtentsFit(item.extents(), gpu_pool_->bytes, length)) {
      Release(lease.lease_id);
      return absl::InternalError("the daemon's GPU lease names ranges outside its pool");
    }
    lease.items.push_back(std::move(item));
  }
  return lease;
}

void LocalPathClient::Release(uint64_t lease_id) {
  v1::LocalRelease release;
  release.set_lease_id(lease_id);
  MutexLock lock(&mu_);
  // One-way: a failed write shows at the next request.
  WriteLocalMessage(fd_, LocalMessage::kRelease, release, -1, owed_releases_->Take());
}

void LocalPathClient::SendReleases(const std::string& framed) {
  MutexLock lock(&mu_);
  iovec iov = {const_cast<char*>(framed.data()), framed.size()};
  if (!WriteFullV(fd_, &iov, 1)) shutdown(fd_, SHUT_RDWR);  // out of step
}

void LocalPathClient::SendReport(const v1::DirectReadReport& report) {
  MutexLock lock(&mu_);
  if (!WriteLocalMessage(fd_, LocalMessage::kDirectReads, report, -1, owed_releases_->Take())) {
    shutdown(fd_, SHUT_RDWR);  // a partial message: the stream is out of step
  }
}

bool LocalPathClient::DirectoryAnswers() const {
  if (directory_ == nullptr || !directory_->live()) return false;
  pollfd p{fd_, POLLRDHUP, 0};
  if (poll(&p, 1, 0) < 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) == 0;
}

std::optional<uint32_t> LocalPathClient::NamespaceId(const std::string& ns) {
  MutexLock lock(&ns_mu_);
  auto it = namespace_ids_.find(ns);
  if (it == namespace_ids_.end()) return std::nullopt;  // the first lease will tell us
  return it->second;
}

Transport::Outcome LocalPathClient::Lookup(const std::string& ns,
                                           absl::Span<const BlockKey> keys,
                                           LookupResult* result) {
  const Outcome ask_the_daemon{absl::OkStatus(), false, /*partial=*/true};
  if (!options_.direct_lookups || keys.empty() || !DirectoryAnswers()) return ask_the_daemon;
  const std::optional<uint32_t> ns_id = NamespaceId(ns);
  if (!ns_id.has_value()) return ask_the_daemon;
  // Read before the slots: a directory that stops being complete meanwhile
  // only makes this answer as old as a lookup racing a put already is.
  const bool complete = directory_->complete();
  for (const BlockKey& key : keys) {
    bool changed = false;
    const std::optional<uint64_t> size = directory_->ListedSize(*ns_id, key, &changed);
    if (!size.has_value()) {
      // A miss needs no request when every cached block is listed, or when
      // the presence table says nothing of this key is cached in any tier.
      const bool final = (complete || directory_->Absent(*ns_id, key)) && !changed;
      return Outcome{absl::OkStatus(), false, /*partial=*/!final};
    }
    result->sizes.push_back(*size);
    result->tiers.push_back(v1::TIER_HOST);
    ++result->hits;
  }
  return Outcome{absl::OkStatus(), false};
}

size_t LocalPathClient::CopyListed(const std::string& ns, absl::Span<const FetchTarget> targets,
                                   bool streaming, std::vector<v1::Tier>* tiers) {
  const std::optional<uint32_t> ns_id = NamespaceId(ns);
  if (!ns_id.has_value() || !DirectoryAnswers()) return 0;
  size_t copied = 0;
  for (const FetchTarget& t : targets) {
    // kChanged leaves garbage in t.dest; the lease path overwrites it.
    if (directory_->Copy(*ns_id, t.key, t.offset, t.dest, streaming) !=
        BlockDirectoryReader::Result::kCopied) {
      break;
    }
    reporter_->Record(*ns_id, t.key, t.dest.size());
    tiers->push_back(v1::TIER_HOST);
    ++copied;
  }
  direct_reads_.fetch_add(copied, std::memory_order_relaxed);
  return copied;
}

bool LocalPathClient::ExtentsFit(const google::protobuf::RepeatedPtrField<v1::ArenaExtent>& extents,
                                 uint64_t mapping_size, uint64_t length) {
  uint64_t total = 0;
  for (const v1::ArenaExtent& e : extents) {
    if (e.offset() > mapping_size || e.length() > mapping_size - e.offset()) return false;
    total += e.length();
  }
  return total == length;
}

Transport::Outcome LocalPathClient::Fetch(const FetchCall& call,
                                          absl::Span<const FetchTarget> targets,
                                          FetchProgress* progress) {
  size_t fetch_bytes = 0;
  for (const FetchTarget& t : targets) fetch_bytes += t.dest.size();
  size_t listed = 0;  // leading targets copied through the directory
  if (directory_ != nullptr && !options_.verify) {
    listed = CopyListed(call.ns, targets, fetch_bytes >= kStreamingFetchBytes, progress->tiers);
    progress->completed += listed;
    progress->direct += listed;
    if (listed == targets.size()) {
      reporter_->RecordFetch();
      return Outcome{absl::OkStatus(), false};
    }
  }
  v1::LocalLease lease;
  Outcome call_outcome =
      Call(LocalMessage::kFetchLease, MakeFetchRequest(call, targets.subspan(listed)),
           LocalMessage::kLease, &lease);
  if (!call_outcome.status.ok()) return call_outcome;
  if (directory_ != nullptr && lease.has_namespace_id()) {
    MutexLock lock(&ns_mu_);
    namespace_ids_.try_emplace(call.ns, lease.namespace_id());
  }
  if (lease.status_code() != 0) {
    // A miss after directory hits is the end of the cached run, not an error.
    if (listed > 0 && lease.status_code() == static_cast<int32_t>(absl::StatusCode::kNotFound)) {
      return Outcome{absl::OkStatus(), false};
    }
    return Outcome{StatusOf(lease.status_code(), lease.status_message()), false};
  }
  FetchReceiver receiver(targets, options_.verify, progress);
  const bool streaming = fetch_bytes >= kStreamingFetchBytes;
  Outcome outcome{absl::OkStatus(), false};
  for (const v1::LeasedItem& item : lease.items()) {
    uint64_t length = 0;
    for (const v1::ArenaExtent& e : item.extents()) length += e.length();
    FetchChunkHeader piece;
    piece.item_index = item.item_index() + static_cast<uint32_t>(listed);
    piece.block_size = item.block_size();
    piece.block_checksum = item.block_checksum();
    piece.offset = item.offset();
    piece.data_length = length;
    piece.tier = item.tier();
    absl::StatusOr<uint8_t*> to = receiver.Begin(piece);
    // A lease gives each block whole, inside the mapping.
    if (!to.ok() ||
        !ExtentsFit(item.extents(), arena_size_, targets[piece.item_index].dest.size())) {
      outcome = Outcome{absl::InternalError("local lease does not match the request"), true};
      break;
    }
    ChecksumStream* checksum = receiver.checksum();
    for (const v1::ArenaExtent& e : item.extents()) {
      const uint8_t* from = arena_ + e.offset();
      if (checksum != nullptr) {
        checksum->CopyAndUpdate(*to, {from, static_cast<size_t>(e.length())});
      } else {
        (streaming ? BulkCopyStreaming : BulkCopy)(*to, from, e.length());
      }
      *to += e.length();
    }
    if (absl::Status s = receiver.End(); !s.ok()) {
      outcome = Outcome{s, false};
      break;
    }
  }
  // The daemon reads it with our next request (owed_releases.h).
  owed_releases_->Add(lease.lease_id());
  return outcome;
}

}  // namespace kvcache
