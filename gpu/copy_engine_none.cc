#include "gpu/copy_engine.h"

namespace kvcache {
namespace {

absl::Status NoCuda() { return absl::UnavailableError("built without CUDA"); }

}  // namespace

absl::StatusOr<CopyTicket> CopyTicket::Record(GpuStream) { return NoCuda(); }
CopyTicket::CopyTicket(CopyTicket&& other) noexcept : event_(other.event_) {
  other.event_ = nullptr;
}
CopyTicket& CopyTicket::operator=(CopyTicket&& other) noexcept {
  event_ = other.event_;
  other.event_ = nullptr;
  return *this;
}
CopyTicket::~CopyTicket() = default;
absl::Status CopyTicket::Wait() { return NoCuda(); }
absl::StatusOr<bool> CopyTicket::Ready() { return NoCuda(); }
absl::Status CopyTicket::ChainTo(GpuStream) { return NoCuda(); }

absl::StatusOr<std::unique_ptr<CopyEngine>> CopyEngine::Create(const Options&) { return NoCuda(); }
CopyEngine::~CopyEngine() = default;
absl::StatusOr<CopyTicket> CopyEngine::Submit(Direction, absl::Span<const CopyOp>) {
  return NoCuda();
}
absl::Status CopyEngine::After(Direction, GpuStream) { return NoCuda(); }
std::string CopyEngine::batch_mode() const { return "none (built without CUDA)"; }
absl::Status CopyEngine::QueueCopies(absl::Span<const CopyOp>, GpuStream) { return NoCuda(); }
absl::Status CopyEngine::QueueOneByOne(absl::Span<const CopyOp>, GpuStream) { return NoCuda(); }

}  // namespace kvcache
