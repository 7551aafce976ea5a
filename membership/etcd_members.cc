#include "membership/etcd_members.h"

#include <algorithm>

namespace kvcache {

absl::StatusOr<std::unique_ptr<EtcdMembers>> EtcdMembers::Create(const EtcdMembersOptions& options,
                                                                 OnChange on_change) {
  if (options.prefix.empty()) return absl::InvalidArgumentError("etcd: empty member prefix");
  absl::StatusOr<std::unique_ptr<EtcdClient>> etcd =
      EtcdClient::Create(options.etcd, options.timeout, options.etcd_security);
  if (!etcd.ok()) return etcd.status();
  std::unique_ptr<EtcdMembers> m(new EtcdMembers(options, std::move(*etcd), std::move(on_change)));
  absl::StatusOr<int64_t> revision = m->Resync();
  if (!revision.ok()) return revision.status();
  m->Publish();
  m->thread_ = std::thread([p = m.get(), rev = *revision] {
    p->WatchFrom(rev);
    p->Run();
  });
  return m;
}

EtcdMembers::EtcdMembers(const EtcdMembersOptions& options, std::unique_ptr<EtcdClient> etcd,
                         OnChange on_change)
    : options_(options), etcd_(std::move(etcd)), on_change_(std::move(on_change)) {}

EtcdMembers::~EtcdMembers() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    if (watch_ctx_ != nullptr) watch_ctx_->TryCancel();
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> EtcdMembers::members() const {
  MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [key, address] : by_key_) out.push_back(address);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

absl::StatusOr<int64_t> EtcdMembers::Resync() {
  absl::StatusOr<EtcdRange> range = etcd_->RangePrefix(options_.prefix);
  if (!range.ok()) return range.status();
  MutexLock lock(&mu_);
  by_key_.clear();
  for (const EtcdKeyValue& kv : range->kvs) {
    if (!kv.value.empty()) by_key_[kv.key] = kv.value;
  }
  return range->revision;
}

void EtcdMembers::Publish() {
  std::vector<std::string> now = members();
  if (now == published_) return;
  published_ = now;
  if (on_change_) on_change_(now);
}

void EtcdMembers::WatchFrom(int64_t revision) {
  grpc::ClientContext ctx;
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    watch_ctx_ = &ctx;
  }
  // A failed login (etcd away, or the user refused) is a failed watch: the
  // caller reads afresh and watches again.
  if (etcd_->AddToken(&ctx).ok()) {
    const std::shared_ptr<etcdserverpb::Watch::Stub> stub = etcd_->watch_stub();
    auto stream = stub->Watch(&ctx);
    etcdserverpb::WatchRequest req;
    etcdserverpb::WatchCreateRequest* create = req.mutable_create_request();
    create->set_key(options_.prefix);
    create->set_range_end(EtcdPrefixEnd(options_.prefix));
    create->set_start_revision(revision + 1);
    if (stream->Write(req)) {
      etcdserverpb::WatchResponse resp;
      while (stream->Read(&resp)) {
        if (resp.canceled()) break;  // compacted past our revision: read afresh
        if (resp.events_size() == 0) continue;
        {
          MutexLock lock(&mu_);
          for (const etcdserverpb::Event& e : resp.events()) {
            if (e.type() == etcdserverpb::Event::PUT && !e.kv().value().empty()) {
              by_key_[e.kv().key()] = e.kv().value();
            } else {
              by_key_.erase(e.kv().key());
            }
          }
        }
        Publish();
      }
    }
    ctx.TryCancel();
    (void)stream->Finish();
  }
  MutexLock lock(&mu_);
  watch_ctx_ = nullptr;
}

void EtcdMembers::Run() {
  while (true) {
    {
      MutexLock lock(&mu_);
      if (stopping_) return;
      wake_.WaitFor(&mu_, absl::ToChronoNanoseconds(options_.retry_interval));
      if (stopping_) return;
    }
    absl::StatusOr<int64_t> revision = Resync();
    if (!revision.ok()) continue;  // keep the last list; try again
    Publish();
    WatchFrom(*revision);
  }
}

}  // namespace kvcache
