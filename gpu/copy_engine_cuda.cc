#include <cuda_runtime_api.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gpu/copy_engine.h"
#include "gpu/select_gpu.h"

namespace kvcache {
namespace {

// Copies per cudaMemcpyBatchAsync call: bounds the arrays built per call.
constexpr size_t kMaxBatch = 1024;

absl::Status CudaError(const char* what, cudaError_t err) {
  return absl::InternalError(absl::StrCat(what, ": ", cudaGetErrorString(err)));
}

}  // namespace

absl::StatusOr<CopyTicket> CopyTicket::Record(GpuStream stream) {
  cudaEvent_t event = nullptr;
  if (cudaError_t err = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
      err != cudaSuccess) {
    return CudaError("cudaEventCreate", err);
  }
  if (cudaError_t err = cudaEventRecord(event, stream); err != cudaSuccess) {
    cudaEventDestroy(event);
    return CudaError("cudaEventRecord", err);
  }
  return CopyTicket(event);
}

CopyTicket::CopyTicket(CopyTicket&& other) noexcept
    : event_(std::exchange(other.event_, nullptr)) {}

CopyTicket& CopyTicket::operator=(CopyTicket&& other) noexcept {
  if (this != &other) {
    if (event_ != nullptr) cudaEventDestroy(event_);
    event_ = std::exchange(other.event_, nullptr);
  }
  return *this;
}

CopyTicket::~CopyTicket() {
  if (event_ != nullptr) cudaEventDestroy(event_);
}

absl::Status CopyTicket::Wait() {
  if (event_ == nullptr) return absl::FailedPreconditionError("empty copy ticket");
  if (cudaError_t err = cudaEventSynchronize(event_); err != cudaSuccess) {
    return CudaError("copy failed", err);
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> CopyTicket::Ready() {
  if (event_ == nullptr) return absl::FailedPreconditionError("empty copy ticket");
  const cudaError_t err = cudaEventQuery(event_);
  if (err == cudaSuccess) return true;
  if (err == cudaErrorNotReady) return false;
  return CudaError("copy failed", err);
}

absl::Status CopyTicket::ChainTo(GpuStream stream) {
  if (event_ == nullptr) return absl::FailedPreconditionError("empty copy ticket");
  if (cudaError_t err = cudaStreamWaitEvent(stream, event_, 0); err != cudaSuccess) {
    return CudaError("cudaStreamWaitEvent", err);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CopyEngine>> CopyEngine::Create(const Options& options) {
  if (absl::Status selected = SelectGpu(options.device); !selected.ok()) return selected;
  // Non-blocking: the engine's copies never wait for the legacy default stream.
  cudaStream_t to_device = nullptr;
  cudaStream_t to_host = nullptr;
  if (cudaError_t err = cudaStreamCreateWithFlags(&to_device, cudaStreamNonBlocking);
      err != cudaSuccess) {
    return CudaError("cudaStreamCreate", err);
  }
  if (cudaError_t err = cudaStreamCreateWithFlags(&to_host, cudaStreamNonBlocking);
      err != cudaSuccess) {
    cudaStreamDestroy(to_device);
    return CudaError("cudaStreamCreate", err);
  }
  return std::unique_ptr<CopyEngine>(
      new CopyEngine(options.device, to_device, to_host, options.batch_api));
}

CopyEngine::~CopyEngine() {
  cudaSetDevice(device_);
  cudaStreamSynchronize(to_device_);
  cudaStreamSynchronize(to_host_);
  cudaStreamDestroy(to_device_);
  cudaStreamDestroy(to_host_);
}

std::string CopyEngine::batch_mode() const {
  if (use_batch_api_.load(std::memory_order_relaxed)) return "batched (cudaMemcpyBatchAsync)";
  if (batch_api_error_.load() == 0) return "one cudaMemcpyAsync per copy (batch_api off)";
  return absl::StrCat("one cudaMemcpyAsync per copy (cudaMemcpyBatchAsync: ",
                      cudaGetErrorString(static_cast<cudaError_t>(batch_api_error_.load())), ")");
}

absl::Status CopyEngine::QueueCopies(absl::Span<const CopyOp> ops, GpuStream stream) {
  if (ops.size() > 1 && use_batch_api_.load(std::memory_order_relaxed)) {
    std::vector<void*> dsts;
    std::vector<const void*> srcs;
    std::vector<size_t> sizes;
    cudaError_t refused = cudaSuccess;
    for (size_t start = 0; start < ops.size(); start += kMaxBatch) {
      const size_t n = std::min(kMaxBatch, ops.size() - start);
      dsts.clear();
      srcs.clear();
      sizes.clear();
      for (const CopyOp& op : ops.subspan(start, n)) {
        dsts.push_back(op.dst);
        srcs.push_back(op.src);
        sizes.push_back(op.bytes);
      }
      cudaMemcpyAttributes attrs{};
      attrs.srcAccessOrder = cudaMemcpySrcAccessOrderStream;
      size_t first = 0;
      const cudaError_t err = cudaMemcpyBatchAsync(dsts.data(), srcs.data(), sizes.data(), n,
                                                   &attrs, &first, 1, stream);
      if (err == cudaSuccess) continue;
      if (start > 0) return CudaError("cudaMemcpyBatchAsync", err);
      // Refused before anything was queued: an old driver, or a bad copy.
      // The per-copy path below tells which.
      cudaGetLastError();
      refused = err;
      break;
    }
    if (refused == cudaSuccess) return absl::OkStatus();
    if (absl::Status one_by_one = QueueOneByOne(ops, stream); !one_by_one.ok()) {
      return one_by_one;  // the copies themselves are bad; batching stays on
    }
    // The same copies went through one by one: batching is what the driver
    // refuses. Stop asking, for good.
    batch_api_error_.store(refused);
    use_batch_api_.store(false, std::memory_order_relaxed);
    return absl::OkStatus();
  }
  return QueueOneByOne(ops, stream);
}

absl::Status CopyEngine::QueueOneByOne(absl::Span<const CopyOp> ops, GpuStream stream) {
  for (const CopyOp& op : ops) {
    if (cudaError_t err = cudaMemcpyAsync(op.dst, op.src, op.bytes, cudaMemcpyDefault, stream);
        err != cudaSuccess) {
      return CudaError("cudaMemcpyAsync", err);
    }
  }
  return absl::OkStatus();
}

absl::Status CopyEngine::After(Direction direction, GpuStream stream) {
  if (cudaError_t err = cudaSetDevice(device_); err != cudaSuccess) {
    return CudaError("cudaSetDevice", err);
  }
  cudaEvent_t event = nullptr;
  if (cudaError_t err = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
      err != cudaSuccess) {
    return CudaError("cudaEventCreate", err);
  }
  cudaError_t err = cudaEventRecord(event, stream);
  if (err == cudaSuccess) err = cudaStreamWaitEvent(this->stream(direction), event, 0);
  cudaEventDestroy(event);  // safe: destruction waits for nothing and frees once done
  if (err != cudaSuccess) return CudaError("ordering after the worker's stream", err);
  return absl::OkStatus();
}

absl::StatusOr<CopyTicket> CopyEngine::Submit(Direction direction, absl::Span<const CopyOp> ops) {
  if (cudaError_t err = cudaSetDevice(device_); err != cudaSuccess) {
    return CudaError("cudaSetDevice", err);
  }
  GpuStream queue = stream(direction);
  const std::vector<CopyOp> merged = CoalesceCopies(ops);
  if (absl::Status queued = QueueCopies(merged, queue); !queued.ok()) {
    // Some copies may be queued already, with no ticket to track them: let
    // them finish, so no caller's memory is touched after this returns.
    cudaStreamSynchronize(queue);
    return queued;
  }
  return CopyTicket::Record(queue);
}

}  // namespace kvcache
