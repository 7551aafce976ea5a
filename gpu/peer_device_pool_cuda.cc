#include <cuda_runtime_api.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "gpu/peer_device_pool.h"
#include "gpu/select_gpu.h"

namespace kvcache {

absl::StatusOr<std::unique_ptr<PeerDevicePool>> PeerDevicePool::Open(const std::string& ipc_handle,
                                                                     const std::string& pci_bus_id,
                                                                     uint64_t bytes, int device) {
  if (absl::Status selected = SelectGpu(device); !selected.ok()) return selected;
  if (ipc_handle.size() != sizeof(cudaIpcMemHandle_t)) {
    return absl::UnavailableError("no CUDA IPC handle for the daemon's GPU pool");
  }
  // Only the GPU the pool lives on: a copy from another would cross the
  // bus (or NVLink) and is left to the staged path.
  int pool_device = -1;
  if (cudaDeviceGetByPCIBusId(&pool_device, pci_bus_id.c_str()) != cudaSuccess ||
      pool_device != device) {
    cudaGetLastError();
    return absl::UnavailableError(
        absl::StrCat("the daemon's GPU pool is on GPU ", pci_bus_id, ", not on GPU ", device));
  }
  cudaIpcMemHandle_t handle;
  std::memcpy(&handle, ipc_handle.data(), sizeof(handle));
  void* base = nullptr;
  if (cudaError_t err = cudaIpcOpenMemHandle(&base, handle, cudaIpcMemLazyEnablePeerAccess);
      err != cudaSuccess) {
    cudaGetLastError();
    return absl::UnavailableError(
        absl::StrCat("cannot open the daemon's GPU pool: ", cudaGetErrorString(err)));
  }
  return std::unique_ptr<PeerDevicePool>(
      new PeerDevicePool(static_cast<const uint8_t*>(base), bytes, device));
}

PeerDevicePool::~PeerDevicePool() {
  cudaSetDevice(device_);
  cudaIpcCloseMemHandle(const_cast<uint8_t*>(base_));
}

absl::StatusOr<CopyTicket> PeerDevicePool::CopyOut(absl::Span<const CopyOp> ops, GpuStream stream) {
  if (cudaError_t err = cudaSetDevice(device_); err != cudaSuccess) {
    return absl::InternalError(absl::StrCat("cudaSetDevice: ", cudaGetErrorString(err)));
  }
  // Device-to-device copies run on the GPU's copy engines at memory speed;
  // pages are 64 KiB or more, so one call per coalesced piece is cheap.
  for (const CopyOp& op : CoalesceCopies(ops)) {
    if (cudaError_t err =
            cudaMemcpyAsync(op.dst, op.src, op.bytes, cudaMemcpyDeviceToDevice, stream);
        err != cudaSuccess) {
      cudaGetLastError();
      cudaStreamSynchronize(stream);  // nothing of this call left in flight
      return absl::InternalError(absl::StrCat("cudaMemcpyAsync: ", cudaGetErrorString(err)));
    }
  }
  return CopyTicket::Record(stream);
}

}  // namespace kvcache
