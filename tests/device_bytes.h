// Device memory for GPU tests, poisoned so a copy that did not land shows.
// CUDA builds only.
#ifndef KVCACHE_TESTS_DEVICE_BYTES_H_
#define KVCACHE_TESTS_DEVICE_BYTES_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>

namespace kvcache {

struct DeviceBytes {
  explicit DeviceBytes(size_t n) : size(n) {
    ok = cudaMalloc(&data, n) == cudaSuccess && cudaMemset(data, 0xA5, n) == cudaSuccess;
  }
  ~DeviceBytes() { cudaFree(data); }
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
  // The bytes, copied to the host (after everything queued on the device).
  std::string Read() const {
    std::string out(size, '\0');
    cudaMemcpy(out.data(), data, size, cudaMemcpyDeviceToHost);
    return out;
  }
  void* data = nullptr;
  size_t size;
  bool ok = false;
};

}  // namespace kvcache

#endif  // KVCACHE_TESTS_DEVICE_BYTES_H_
