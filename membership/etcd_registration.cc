#include "membership/etcd_registration.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"


namespace kvcache {

absl::StatusOr<std::unique_ptr<EtcdRegistration>> EtcdRegistration::Create(
    const EtcdRegistrationOptions& options) {
  if (options.prefix.empty()) return absl::InvalidArgumentError("etcd: empty member prefix");
  if (options.address.empty()) return absl::InvalidArgumentError("etcd: empty member address");
  if (options.ttl < absl::Seconds(1)) {
    return absl::InvalidArgumentError("etcd: the member lease TTL must be at least 1 s");
  }
  absl::StatusOr<std::unique_ptr<EtcdClient>> etcd =
      EtcdClient::Create(options.etcd, std::min(options.ttl / 3, absl::Seconds(2)),
                         options.etcd_security);
  if (!etcd.ok()) return etcd.status();
  std::unique_ptr<EtcdRegistration> r(new EtcdRegistration(options, std::move(*etcd)));
  absl::Status first = r->Register();
  if (!first.ok()) {
    Log(LogLevel::kWarning, absl::StrCat("cannot register in etcd yet (", first.message(),
                                         "); retrying every ",
                                         absl::FormatDuration(options.retry_interval)));
  }
  r->thread_ = std::thread([p = r.get()] { p->Run(); });
  return r;
}

EtcdRegistration::EtcdRegistration(const EtcdRegistrationOptions& options,
                                   std::unique_ptr<EtcdClient> etcd)
    : options_(options), key_(options.prefix + options.address), etcd_(std::move(etcd)) {}

EtcdRegistration::~EtcdRegistration() { Leave(); }

void EtcdRegistration::Leave() {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
  int64_t lease;
  {
    MutexLock lock(&mu_);  // read after the join: a registration in flight counts
    lease = lease_;
  }
  if (lease != 0) (void)etcd_->RevokeLease(lease);  // best effort: else it expires
  MutexLock lock(&mu_);
  lease_ = 0;
  left_ = true;
}

std::string EtcdRegistration::Describe() const {
  MutexLock lock(&mu_);
  std::string line = key_ + " in etcd at " + options_.etcd;
  if (left_) return line + ": left the cluster (stopping)";
  if (lease_ == 0) return line + ": not registered, retrying (" + last_error_ + ")";
  return line + ": registered" +
         (last_error_.empty() ? "" : " (last renewal failed: " + last_error_ + ")");
}

bool EtcdRegistration::registered() const {
  MutexLock lock(&mu_);
  return lease_ != 0;
}

std::string EtcdRegistration::last_error() const {
  MutexLock lock(&mu_);
  return last_error_;
}

void EtcdRegistration::SetState(int64_t lease, const absl::Status& status) {
  MutexLock lock(&mu_);
  lease_ = lease;
  last_error_ = status.ok() ? "" : std::string(status.message());
}

absl::Status EtcdRegistration::Register() {
  absl::StatusOr<int64_t> lease = etcd_->GrantLease(options_.ttl);
  if (!lease.ok()) {
    SetState(0, lease.status());
    return lease.status();
  }
  absl::Status put = etcd_->Put(key_, options_.address, *lease);
  if (!put.ok()) {
    (void)etcd_->RevokeLease(*lease);
    SetState(0, put);
    return put;
  }
  SetState(*lease, absl::OkStatus());
  return absl::OkStatus();
}

void EtcdRegistration::Run() {
  const absl::Duration renew_every = options_.ttl / 3;
  while (true) {
    int64_t lease;
    {
      MutexLock lock(&mu_);
      // Leave() may have signalled while this thread was in a call.
      if (stopping_) return;
      const absl::Duration wait = lease_ != 0 ? renew_every : options_.retry_interval;
      wake_.WaitFor(&mu_, absl::ToChronoNanoseconds(wait));
      if (stopping_) return;
      lease = lease_;
    }
    if (lease == 0) {
      if (Register().ok()) Log(LogLevel::kInfo, absl::StrCat("registered in etcd as ", key_));
      continue;
    }
    absl::StatusOr<absl::Duration> renewed = etcd_->KeepAliveOnce(lease);
    if (renewed.ok()) {
      SetState(lease, absl::OkStatus());
      continue;
    }
    if (absl::IsNotFound(renewed.status())) {
      // The lease is gone (we were paused past the TTL, or etcd lost it), and
      // with it our key: register again now.
      Log(LogLevel::kWarning,
          absl::StrCat("etcd ", renewed.status().message(), "; registering again"));
      (void)Register();  // records the new lease, or the error and lease 0
      continue;
    }
    // A failed renewal (etcd unreachable) keeps the lease: it may still be
    // alive, and the next renewal finds out.
    SetState(lease, renewed.status());
  }
}

}  // namespace kvcache
