#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"
#include "gpu/pinned_memory.h"
#include "gpu/select_gpu.h"

namespace kvcache {
namespace {

// Pinning needs a CUDA context, so a usable GPU.
absl::Status NeedsGpu() { return SelectGpu(0); }

}  // namespace

absl::StatusOr<std::unique_ptr<PinnedRegistration>> PinnedRegistration::Create(void* base,
                                                                               uint64_t bytes) {
  if (base == nullptr || bytes == 0) return absl::InvalidArgumentError("nothing to pin");
  if (absl::Status gpu = NeedsGpu(); !gpu.ok()) return gpu;
  if (cudaError_t err = cudaHostRegister(base, bytes, cudaHostRegisterPortable);
      err != cudaSuccess) {
    cudaGetLastError();
    return absl::InternalError(
        absl::StrCat("cudaHostRegister of ", bytes, " bytes: ", cudaGetErrorString(err)));
  }
  return std::unique_ptr<PinnedRegistration>(new PinnedRegistration(base, bytes));
}

PinnedRegistration::~PinnedRegistration() { cudaHostUnregister(base_); }

absl::StatusOr<std::unique_ptr<PinnedBuffer>> PinnedBuffer::Create(uint64_t bytes) {
  if (bytes == 0) return absl::InvalidArgumentError("empty pinned buffer");
  if (absl::Status gpu = NeedsGpu(); !gpu.ok()) return gpu;
  void* data = nullptr;
  if (cudaError_t err = cudaHostAlloc(&data, bytes, cudaHostAllocPortable); err != cudaSuccess) {
    cudaGetLastError();
    return absl::ResourceExhaustedError(
        absl::StrCat("cudaHostAlloc of ", bytes, " bytes: ", cudaGetErrorString(err)));
  }
  return std::unique_ptr<PinnedBuffer>(new PinnedBuffer(static_cast<uint8_t*>(data), bytes));
}

PinnedBuffer::~PinnedBuffer() { cudaFreeHost(data_); }

bool IsPinned(const void* address) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, address) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return attributes.type == cudaMemoryTypeHost;
}

}  // namespace kvcache
