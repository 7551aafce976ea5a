#include "kvstore/local_path_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/types/span.h"
#include "common/socket_io.h"
#include "kvcache/v1/local.pb.h"
#include "kvstore/fetch_plan.h"
#include "kvstore/put_admission.h"
#include "kvstore/staging_space.h"
#include "proto/local_wire.h"

namespace kvcache {
namespace {

bool Send(int fd, LocalMessage type, const google::protobuf::Message& body) {
  const std::string bytes = body.SerializeAsString();
  uint32_t head[2] = {static_cast<uint32_t>(type), static_cast<uint32_t>(bytes.size())};
  iovec iov[2] = {{head, sizeof(head)}, {const_cast<char*>(bytes.data()), bytes.size()}};
  return WriteFullV(fd, iov, bytes.empty() ? 1 : 2);
}

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

// LocalLease and LocalResult both carry a status.
template <typename Message>
void SetStatus(const absl::Status& s, Message& m) {
  m.set_status_code(static_cast<int32_t>(s.code()));
  m.set_status_message(std::string(s.message()));
}

// Appends the arena ranges of [offset, offset + length) of `pages`, merging
// pages that happen to be adjacent.
void AppendExtents(const HostArena& arena, const PageRun& pages, uint64_t offset, uint64_t length,
                   google::protobuf::RepeatedPtrField<v1::ArenaExtent>* out) {
  const uint8_t* base = arena.PageData(0);
  pages.ForEachPiece(offset, length, [&](const uint8_t* p, size_t len) {
    const uint64_t at = static_cast<uint64_t>(p - base);
    if (!out->empty() && out->rbegin()->offset() + out->rbegin()->length() == at) {
      out->rbegin()->set_length(out->rbegin()->length() + len);
      return;
    }
    v1::ArenaExtent* e = out->Add();
    e->set_offset(at);
    e->set_length(len);
  });
}

// Counts itself in `*count` while it exists, copies and moves included (a
// lease moves when its connection's map grows).
class LeaseCount {
 public:
  explicit LeaseCount(std::atomic<uint64_t>* count = nullptr) : count_(count) { Add(+1); }
  LeaseCount(const LeaseCount& other) : LeaseCount(other.count_) {}
  LeaseCount& operator=(const LeaseCount& other) {
    if (this != &other) {
      Add(-1);
      count_ = other.count_;
      Add(+1);
    }
    return *this;
  }
  ~LeaseCount() { Add(-1); }

 private:
  void Add(int n) {
    if (count_ != nullptr) count_->fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  }
  std::atomic<uint64_t>* count_;
};

struct Lease {
  std::vector<BlockPin> pins;           // a fetch lease,
  ShareCharge charge;                   // counted against the connection
  std::vector<std::shared_ptr<const DeviceBlock>> device;  // a GPU lease
  std::unique_ptr<StagedBlock> staged;  // a put lease: arena pages,
  StagingSpace::Range staging;          // and where the client writes
  std::string ns;                       // the put's namespace
  absl::Time expires;
  LeaseCount counted;  // in ServiceCounters::leases_held; last, so it goes first
};

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

bool LocalPathServer::Allowed(int fd, std::string* who) const {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  *who = absl::StrCat("uid ", cred.uid, " gid ", cred.gid, " pid ", cred.pid);
  const auto& uids = options_.allowed_uids;
  const auto& gids = options_.allowed_gids;
  return std::find(uids.begin(), uids.end(), cred.uid) != uids.end() ||
         std::find(gids.begin(), gids.end(), cred.gid) != gids.end();
}

void LocalPathServer::Serve(int fd) {
  std::string who;
  if (!Allowed(fd, &who)) {
    v1::LocalResult refused;
    SetStatus(absl::PermissionDeniedError(absl::StrCat(
                  who, " may not use the same-host path (see --local_allowed_uids)")), refused);
    Send(fd, LocalMessage::kRefused, refused);
    return;
  }
  HostArena& arena = service_.store.arena();
  absl::StatusOr<std::unique_ptr<StagingSpace>> staging =
      StagingSpace::Create(options_.staging_bytes);
  if (!staging.ok()) {
    v1::LocalResult refused;
    SetStatus(staging.status(), refused);
    Send(fd, LocalMessage::kRefused, refused);
    return;
  }
  v1::LocalWelcome welcome;
  welcome.set_instance_id(options_.instance_id);
  welcome.set_arena_bytes(arena.capacity_bytes());
  welcome.set_page_bytes(arena.page_bytes());
  welcome.set_staging_bytes((*staging)->size());
  welcome.set_put_staged(true);
  std::vector<int> fds = {arena.fd(), (*staging)->fd()};
  const BlockDirectory* directory = service_.store.directory();
  if (directory != nullptr) {
    welcome.set_directory_bytes(directory->bytes());
    fds.push_back(directory->fd());
  }
  if (gpu_share_.has_value()) {
    const DevicePagePool& pool = service_.store.gpu()->memory().pool();
    welcome.set_gpu_pool_bytes(pool.bytes());
    welcome.set_gpu_page_bytes(pool.page_bytes());
    welcome.set_gpu_ipc_handle(gpu_share_->ipc_handle);
    welcome.set_gpu_pci_bus_id(gpu_share_->pci_bus_id);
    if (gpu_share_->memfd >= 0) {
      welcome.set_gpu_pool_fd(true);
      fds.push_back(gpu_share_->memfd);
    }
  }
  if (!SendWelcome(fd, welcome, fds)) return;

  // A client may pause only briefly inside a message (poll waits between
  // them): the thread serves all of this connection's leases.
  timeval stall = absl::ToTimeval(options_.stall_timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &stall, sizeof(stall));
  // What this connection stages and pins is bounded on its own; declared
  // before the leases that charge it.
  std::shared_ptr<ConnectionShare> share =
      service_.shares != nullptr ? service_.shares->ForOne() : nullptr;
  // Leases live here, so they all go back when the connection does (before
  // the staging space their ranges point into).
  absl::flat_hash_map<uint64_t, Lease> leases;
  uint64_t next_lease = 1;
  while (true) {
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, 1000);
    const absl::Time now = absl::Now();
    absl::erase_if(leases, [now](const auto& entry) { return entry.second.expires < now; });
    if (ready == 0 || (ready < 0 && errno == EINTR)) continue;
    uint32_t head[2];
    if (ready < 0 || !ReadFull(fd, head, sizeof(head)) || head[1] > kMaxLocalMessageBytes) return;
    std::string body(head[1], '\0');
    if (!ReadFull(fd, body.data(), body.size())) return;
    const absl::Time expires = now + options_.lease_ttl;
    const LocalMessage type = static_cast<LocalMessage>(head[0]);

    switch (type) {
      case LocalMessage::kFetchLease: {
        v1::FetchRequest request;
        v1::LocalLease reply;
        absl::StatusOr<FetchPlan> plan = request.ParseFromString(body)
                                             ? PlanFetch(service_, kDefaultTenant, share, request)
                                             : absl::InvalidArgumentError("malformed FetchRequest");
        SetStatus(plan.status(), reply);
        // So the client can find this namespace's blocks in the directory.
        if (std::optional<NamespaceId> ns =
                service_.store.namespaces().Find(kDefaultTenant, request.namespace_())) {
          reply.set_namespace_id(*ns);
        }
        if (plan.ok()) {
          Lease& lease = leases[next_lease];
          lease.counted = LeaseCount(&service_.counters.leases_held);
          lease.expires = expires;
          lease.charge = std::move(plan->charge);
          reply.set_lease_id(next_lease++);
          for (FetchPlanItem& item : plan->items) {
            v1::LeasedItem* out = reply.add_items();
            out->set_item_index(item.index);
            out->set_block_size(item.pin.meta().size);
            out->set_block_checksum(item.pin.meta().checksum);
            out->set_offset(item.offset);
            out->set_tier(static_cast<v1::Tier>(item.tier));
            AppendExtents(arena, item.pin.block().pages(), item.offset, item.end - item.offset,
                          out->mutable_extents());
            service_.counters.AddBytes(RequestPath::kSameHost, RequestOp::kFetch,
                                       item.end - item.offset);
            lease.pins.push_back(std::move(item.pin));
          }
        }
        if (!Send(fd, LocalMessage::kLease, reply)) return;
        break;
      }
      case LocalMessage::kGpuLease: {
        v1::FetchRequest request;
        v1::LocalLease reply;
        absl::StatusOr<std::vector<GpuLeaseItem>> items =
            !gpu_share_.has_value()
                ? absl::FailedPreconditionError("this daemon shares no GPU pool")
            : request.ParseFromString(body) ? PlanGpuLease(service_, kDefaultTenant, request)
                                            : absl::InvalidArgumentError("malformed FetchRequest");
        SetStatus(items.status(), reply);
        if (items.ok()) {
          Lease& lease = leases[next_lease];
          lease.counted = LeaseCount(&service_.counters.leases_held);
          lease.expires = expires;
          reply.set_lease_id(next_lease++);
          for (GpuLeaseItem& item : *items) {
            v1::LeasedItem* out = reply.add_items();
            out->set_item_index(item.index);
            out->set_block_size(item.device->size());
            out->set_block_checksum(item.device->checksum());
            out->set_offset(item.offset);
            out->set_tier(v1::TIER_GPU);
            for (const DeviceBlock::PoolRange& r :
                 item.device->PoolRanges(item.offset, item.end - item.offset)) {
              v1::ArenaExtent* e = out->add_extents();
              e->set_offset(r.offset);
              e->set_length(r.length);
            }
            service_.counters.AddBytes(RequestPath::kSameHost, RequestOp::kFetch,
                                       item.end - item.offset);
            lease.device.push_back(std::move(item.device));
          }
        }
        if (!Send(fd, LocalMessage::kLease, reply)) return;
        break;
      }
      case LocalMessage::kPutBegin: {
        v1::PutBlockHeader header;
        v1::LocalLease reply;
        absl::StatusOr<PutAdmission> admission =
            absl::InvalidArgumentError("malformed PutBlockHeader");
        StagingSpace::Range range;
        if (header.ParseFromString(body)) {
          // The client writes into this connection's staging space; arena
          // pages are taken (and room made) only at commit, for a block
          // whose bytes are all there. A size that can never be staged is
          // left to AdmitPut, which says why (the staging space holds at
          // least the largest block).
          absl::StatusOr<StagingSpace::Range> reserved = (*staging)->Reserve(header.size());
          if (reserved.ok()) {
            range = std::move(*reserved);
            admission = AdmitPut(service_, kDefaultTenant, share.get(), header);
          } else if (reserved.status().code() == absl::StatusCode::kResourceExhausted) {
            admission = absl::ResourceExhaustedError(
                absl::StrCat(reserved.status().message(), " (--local_staging)"));
          } else {
            admission = AdmitPut(service_, kDefaultTenant, share.get(), header);
          }
        }
        SetStatus(admission.status(), reply);
        if (admission.ok() && admission->staged == nullptr) reply.set_outcome(admission->outcome);
        if (admission.ok() && admission->staged != nullptr) {
          v1::ArenaExtent* where = reply.add_staging();
          where->set_offset(range.offset());
          where->set_length(range.length());
          Lease& lease = leases[next_lease];
          lease.counted = LeaseCount(&service_.counters.leases_held);
          lease.expires = expires;
          lease.staged = std::move(admission->staged);
          lease.staging = std::move(range);
          lease.ns = header.namespace_();
          reply.set_lease_id(next_lease++);
        }
        if (!admission.ok()) service_.counters.puts_rejected.fetch_add(1, std::memory_order_relaxed);
        if (!Send(fd, LocalMessage::kLease, reply)) return;
        break;
      }
      case LocalMessage::kDirectReads: {  // one-way
        v1::DirectReadReport report;
        if (!report.ParseFromString(body)) return;
        uint64_t blocks = 0;
        for (const v1::DirectRead& read : report.reads()) {
          absl::StatusOr<BlockKey> key = BlockKey::FromBytes(read.key());
          if (!key.ok()) continue;
          service_.store.index().RecordDirectReads(read.namespace_id(), *key, read.count());
          blocks += read.count();
        }
        service_.counters.direct_reads.fetch_add(blocks, std::memory_order_relaxed);
        service_.counters.fetches.fetch_add(report.fetches(), std::memory_order_relaxed);
        service_.counters.bytes_out.fetch_add(report.bytes(), std::memory_order_relaxed);
        service_.counters.direct_read_bytes.fetch_add(report.bytes(), std::memory_order_relaxed);
        break;
      }
      case LocalMessage::kPutStaged: {
        v1::LocalPutStaged request;
        v1::LocalResult reply;
        absl::Status status = absl::InvalidArgumentError("malformed LocalPutStaged");
        if (request.ParseFromString(body)) {
          absl::StatusOr<absl::Span<const uint8_t>> bytes =
              (*staging)->Bytes(request.staging_offset(), request.header().size());
          absl::StatusOr<v1::PutOutcome> outcome =
              bytes.ok() ? PutStagedBytes(service_, kDefaultTenant, share.get(), request.header(),
                                          *bytes)
                         : bytes.status();
          status = outcome.status();
          if (outcome.ok()) reply.set_outcome(*outcome);
          if (!bytes.ok()) service_.counters.puts_rejected.fetch_add(1, std::memory_order_relaxed);
        }
        SetStatus(status, reply);
        if (!Send(fd, LocalMessage::kResult, reply)) return;
        break;
      }
      case LocalMessage::kPutCommit:
      case LocalMessage::kRelease: {
        v1::LocalRelease request;
        v1::LocalResult reply;
        auto it = request.ParseFromString(body) ? leases.find(request.lease_id()) : leases.end();
        const bool commit = static_cast<LocalMessage>(head[0]) == LocalMessage::kPutCommit;
        absl::Status status;
        if (it == leases.end()) {
          status = absl::NotFoundError("no such lease (released, or expired)");
        } else if (commit && it->second.staged == nullptr) {
          status = absl::InvalidArgumentError("lease is not a put lease");
        } else if (commit) {
          StagedBlock& staged = *it->second.staged;
          status = staged.Append(it->second.staging.bytes());  // copies and hashes
          service_.counters.AddBytes(RequestPath::kSameHost, RequestOp::kPut, staged.meta().size);
          absl::StatusOr<v1::PutOutcome> outcome =
              IsNoRoom(status) ? v1::PUT_NO_SPACE
              : status.ok()    ? CommitPut(service_, kDefaultTenant, it->second.ns, staged)
                               : status;
          status = outcome.status();
          if (outcome.ok()) reply.set_outcome(*outcome);
          if (!outcome.ok()) service_.counters.puts_rejected.fetch_add(1, std::memory_order_relaxed);
        }
        if (it != leases.end()) leases.erase(it);
        if (!commit) break;  // releases are one-way: a fetch costs one round trip
        SetStatus(status, reply);
        if (!Send(fd, LocalMessage::kResult, reply)) return;
        break;
      }
      default:
        return;  // not our protocol
    }
    // A fetch is its lease; a put is its commit (the copy, the hash and the
    // index), its begin being only a reservation.
    if (type == LocalMessage::kFetchLease || type == LocalMessage::kGpuLease) {
      service_.counters.RecordLatency(RequestPath::kSameHost, RequestOp::kFetch, absl::Now() - now);
    } else if (type == LocalMessage::kPutCommit || type == LocalMessage::kPutStaged) {
      service_.counters.RecordLatency(RequestPath::kSameHost, RequestOp::kPut, absl::Now() - now);
    }
  }
}

}  // namespace kvcache
