#include "kvstore/server/local_session.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/cpu_pin.h"
#include "common/socket_io.h"
#include "kvcache/v1/local.pb.h"
#include "kvstore/server/fetch_plan.h"
#include "kvstore/server/put_admission.h"
#include "proto/local_message_io.h"

namespace kvcache {
namespace {

// How often a quiet connection's thread wakes to expire its leases.
constexpr absl::Duration kLeaseExpiryTick = absl::Seconds(1);

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

}  // namespace

struct LocalSession::Lease {
  explicit Lease(std::atomic<uint64_t>* held) : held(held) {
    held->fetch_add(1, std::memory_order_relaxed);
  }
  ~Lease() { held->fetch_sub(1, std::memory_order_relaxed); }

  std::vector<BlockPin> pins;           // a fetch lease,
  ShareCharge charge;                   // counted against the connection
  std::vector<std::shared_ptr<const DeviceBlock>> device;  // a GPU lease
  std::unique_ptr<StagedBlock> staged;  // a put lease: arena pages,
  StagingSpace::Range staging;          // and where the client writes
  std::string ns;                       // the put's namespace
  absl::Time expires;
  std::atomic<uint64_t>* const held;    // ServiceCounters::leases_held
};

LocalSession::LocalSession(ServiceContext& service, const Options& options, int fd,
                           std::unique_ptr<StagingSpace> staging)
    : service_(service),
      options_(options),
      fd_(fd),
      stream_(fd, /*owns_fd=*/false),
      staging_(std::move(staging)),
      share_(service.shares != nullptr ? service.shares->ForOne(options.identity.tenant) : nullptr) {}

LocalSession::~LocalSession() = default;

LocalSession::Lease& LocalSession::NewLease(absl::Time now, uint64_t* id) {
  *id = next_lease_++;
  std::unique_ptr<Lease>& lease = leases_[*id];
  lease = std::make_unique<Lease>(&service_.counters.leases_held);
  lease->expires = now + options_.lease_ttl;
  return *lease;
}

void LocalSession::Run() {
  // Between messages the thread waits in poll (ByteStream::WaitReadable says
  // why not in recv), waking at least once a second to expire leases; inside
  // one the client may pause only briefly.
  CpuFollower cpu;  // this thread's
  stream_.SetReadTimeout(options_.stall_timeout);
  while (true) {
    const bool ready = stream_.WaitReadable(kLeaseExpiryTick);
    const absl::Time now = absl::Now();
    absl::erase_if(leases_, [now](const auto& entry) { return entry.second->expires < now; });
    if (!ready) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;  // quiet
      return;  // gone or broken
    }
    uint32_t head[2];
    if (!stream_.ReadFull(head, sizeof(head)) || head[1] > kMaxLocalMessageBytes) return;
    std::string body(head[1], '\0');
    if (!stream_.ReadFull(body.data(), body.size())) return;
    const LocalMessage type = LocalTypeOf(head[0]);
    // The client waits on that CPU: answer from there (common/cpu_pin.h).
    if (options_.follow_cpu) cpu.Follow(LocalWaitingCpuOf(head[0]));
    bool go_on = false;
    switch (type) {
      case LocalMessage::kFetchLease: go_on = OnFetchLease(body, now); break;
      case LocalMessage::kGpuLease: go_on = OnGpuLease(body, now); break;
      case LocalMessage::kPutBegin: go_on = OnPutBegin(body, now); break;
      case LocalMessage::kPutStaged: go_on = OnPutStaged(body); break;
      case LocalMessage::kDirectReads: go_on = OnDirectReads(body); break;
      case LocalMessage::kPutCommit: go_on = OnReleaseOrCommit(body, /*commit=*/true); break;
      case LocalMessage::kRelease: go_on = OnReleaseOrCommit(body, /*commit=*/false); break;
      default: return;  // not our protocol
    }
    if (!go_on) return;
    // A fetch is its lease; a put is its commit (the copy, the hash and the
    // index), its begin being only a reservation.
    if (type == LocalMessage::kFetchLease || type == LocalMessage::kGpuLease) {
      service_.counters.RecordLatency(RequestPath::kSameHost, RequestOp::kFetch, absl::Now() - now);
    } else if (type == LocalMessage::kPutCommit || type == LocalMessage::kPutStaged) {
      service_.counters.RecordLatency(RequestPath::kSameHost, RequestOp::kPut, absl::Now() - now);
    }
  }
}

bool LocalSession::OnFetchLease(const std::string& body, absl::Time now) {
  v1::FetchRequest request;
  v1::LocalLease reply;
  absl::StatusOr<FetchPlan> plan = request.ParseFromString(body)
                                       ? PlanFetch(service_, options_.identity.tenant, share_, request)
                                       : absl::InvalidArgumentError("malformed FetchRequest");
  SetStatus(plan.status(), reply);
  // So the client can find this namespace's blocks in the directory.
  if (std::optional<NamespaceId> ns =
          service_.store.namespaces().Find(options_.identity.tenant, request.namespace_())) {
    reply.set_namespace_id(*ns);
  }
  if (plan.ok()) {
    uint64_t id;
    Lease& lease = NewLease(now, &id);
    lease.charge = std::move(plan->charge);
    reply.set_lease_id(id);
    const HostArena& arena = service_.store.arena();
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
  return WriteLocalMessage(fd_, LocalMessage::kLease, reply);
}

bool LocalSession::OnGpuLease(const std::string& body, absl::Time now) {
  v1::FetchRequest request;
  v1::LocalLease reply;
  absl::StatusOr<std::vector<GpuLeaseItem>> items =
      !options_.gpu_shared ? absl::FailedPreconditionError("this daemon shares no GPU pool")
      : request.ParseFromString(body) ? PlanGpuLease(service_, options_.identity.tenant, request)
                                      : absl::InvalidArgumentError("malformed FetchRequest");
  SetStatus(items.status(), reply);
  if (items.ok()) {
    uint64_t id;
    Lease& lease = NewLease(now, &id);
    reply.set_lease_id(id);
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
  return WriteLocalMessage(fd_, LocalMessage::kLease, reply);
}

bool LocalSession::OnPutBegin(const std::string& body, absl::Time now) {
  v1::PutBlockHeader header;
  v1::LocalLease reply;
  absl::StatusOr<PutAdmission> admission = absl::InvalidArgumentError("malformed PutBlockHeader");
  StagingSpace::Range range;
  const absl::Status permitted = Permit(options_.identity, Role::kWrite);
  if (!permitted.ok()) {
    admission = permitted;
  } else if (header.ParseFromString(body)) {
    // The client writes into this connection's staging space; arena pages
    // are taken (and room made) only at commit, for a block whose bytes are
    // all there. A size that can never be staged is left to AdmitPut, which
    // says why (the staging space holds at least the largest block).
    absl::StatusOr<StagingSpace::Range> reserved = staging_->Reserve(header.size());
    if (reserved.ok()) {
      range = std::move(*reserved);
      admission = AdmitPut(service_, options_.identity.tenant, share_.get(), header);
    } else if (reserved.status().code() == absl::StatusCode::kResourceExhausted) {
      admission = absl::ResourceExhaustedError(
          absl::StrCat(reserved.status().message(), " (--local_staging)"));
    } else {
      admission = AdmitPut(service_, options_.identity.tenant, share_.get(), header);
    }
  }
  SetStatus(admission.status(), reply);
  if (admission.ok() && admission->staged == nullptr) reply.set_outcome(admission->outcome);
  if (admission.ok() && admission->staged != nullptr) {
    v1::ArenaExtent* where = reply.add_staging();
    where->set_offset(range.offset());
    where->set_length(range.length());
    uint64_t id;
    Lease& lease = NewLease(now, &id);
    lease.staged = std::move(admission->staged);
    lease.staging = std::move(range);
    lease.ns = header.namespace_();
    reply.set_lease_id(id);
  }
  if (!admission.ok()) service_.counters.puts_rejected.fetch_add(1, std::memory_order_relaxed);
  return WriteLocalMessage(fd_, LocalMessage::kLease, reply);
}

bool LocalSession::OnPutStaged(const std::string& body) {
  v1::LocalPutStaged request;
  v1::LocalResult reply;
  absl::Status status = Permit(options_.identity, Role::kWrite);
  if (!status.ok()) {
    service_.counters.puts_rejected.fetch_add(1, std::memory_order_relaxed);
  } else if (!request.ParseFromString(body)) {
    status = absl::InvalidArgumentError("malformed LocalPutStaged");
  } else {
    absl::StatusOr<absl::Span<const uint8_t>> bytes =
        staging_->Bytes(request.staging_offset(), request.header().size());
    absl::StatusOr<v1::PutOutcome> outcome =
        bytes.ok()
            ? PutStagedBytes(service_, options_.identity.tenant, share_.get(), request.header(), *bytes)
            : bytes.status();
    status = outcome.status();
    if (outcome.ok()) reply.set_outcome(*outcome);
    if (!bytes.ok()) service_.counters.puts_rejected.fetch_add(1, std::memory_order_relaxed);
  }
  SetStatus(status, reply);
  return WriteLocalMessage(fd_, LocalMessage::kResult, reply);
}

bool LocalSession::OnDirectReads(const std::string& body) {  // one-way
  v1::DirectReadReport report;
  if (!report.ParseFromString(body)) return false;
  uint64_t blocks = 0;
  for (const v1::DirectRead& read : report.reads()) {
    absl::StatusOr<BlockKey> key = BlockKey::FromBytes(read.key());
    if (!key.ok()) continue;
    service_.store.RecordDirectReads(read.namespace_id(), *key, read.count());
    blocks += read.count();
  }
  service_.counters.direct_reads.fetch_add(blocks, std::memory_order_relaxed);
  service_.counters.fetches.fetch_add(report.fetches(), std::memory_order_relaxed);
  service_.counters.bytes_out.fetch_add(report.bytes(), std::memory_order_relaxed);
  service_.counters.direct_read_bytes.fetch_add(report.bytes(), std::memory_order_relaxed);
  return true;
}

bool LocalSession::OnReleaseOrCommit(const std::string& body, bool commit) {
  v1::LocalRelease request;
  v1::LocalResult reply;
  auto it = request.ParseFromString(body) ? leases_.find(request.lease_id()) : leases_.end();
  absl::Status status;
  if (it == leases_.end()) {
    status = absl::NotFoundError("no such lease (released, or expired)");
  } else if (commit && it->second->staged == nullptr) {
    status = absl::InvalidArgumentError("lease is not a put lease");
  } else if (commit) {
    Lease& lease = *it->second;
    StagedBlock& staged = *lease.staged;
    status = staged.Append(lease.staging.bytes());  // copies and hashes
    service_.counters.AddBytes(RequestPath::kSameHost, RequestOp::kPut, staged.meta().size);
    absl::StatusOr<v1::PutOutcome> outcome =
        IsNoRoom(status) ? v1::PUT_NO_SPACE
        : status.ok()    ? CommitPut(service_, options_.identity.tenant, lease.ns, staged)
                         : status;
    status = outcome.status();
    if (outcome.ok()) reply.set_outcome(*outcome);
    if (!outcome.ok()) service_.counters.puts_rejected.fetch_add(1, std::memory_order_relaxed);
  }
  if (it != leases_.end()) leases_.erase(it);
  if (!commit) return true;  // releases are one-way: a fetch costs one round trip
  SetStatus(status, reply);
  return WriteLocalMessage(fd_, LocalMessage::kResult, reply);
}

}  // namespace kvcache
