#include "gpu/device_memory.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace kvcache {

absl::StatusOr<std::unique_ptr<DeviceMemory>> DeviceMemory::Create(
    const DevicePagePool::Options& options) {
  absl::StatusOr<std::unique_ptr<DevicePagePool>> pool = DevicePagePool::Create(options);
  if (!pool.ok()) return pool.status();
  absl::StatusOr<std::unique_ptr<CopyEngine>> engine = CopyEngine::Create({options.device});
  if (!engine.ok()) return engine.status();
  return std::unique_ptr<DeviceMemory>(new DeviceMemory(*std::move(pool), *std::move(engine)));
}

absl::StatusOr<std::unique_ptr<DeviceMemory>> DeviceMemory::CreateHostBacked(
    const DevicePagePool::Options& options) {
  absl::StatusOr<std::unique_ptr<DevicePagePool>> pool = DevicePagePool::CreateHostBacked(options);
  if (!pool.ok()) return pool.status();
  return std::unique_ptr<DeviceMemory>(new DeviceMemory(*std::move(pool), nullptr));
}

absl::Status DeviceMemory::Upload(absl::Span<const CopyOp> ops) {
  return Copy(CopyEngine::Direction::kToDevice, ops);
}

absl::Status DeviceMemory::Download(absl::Span<const CopyOp> ops) {
  return Copy(CopyEngine::Direction::kToHost, ops);
}

void DeviceMemory::InjectCopyFailure(absl::Status status) {
  MutexLock lock(&mu_);
  injected_failure_ = std::move(status);
  failure_injected_.store(true, std::memory_order_release);
}

absl::Status DeviceMemory::Copy(CopyEngine::Direction direction, absl::Span<const CopyOp> ops) {
  if (failure_injected_.load(std::memory_order_acquire)) {
    MutexLock lock(&mu_);
    if (!injected_failure_.ok()) return injected_failure_;
  }
  if (engine_ == nullptr) {
    for (const CopyOp& op : ops) std::memcpy(op.dst, op.src, op.bytes);
    return absl::OkStatus();
  }
  absl::StatusOr<CopyTicket> ticket = engine_->Submit(direction, ops);
  if (!ticket.ok()) return ticket.status();
  return ticket->Wait();
}

std::string DeviceMemory::detail() const {
  if (engine_ == nullptr) return pool_->detail();
  return absl::StrCat(pool_->detail(), "; copies ", engine_->batch_mode());
}

}  // namespace kvcache
