// Makes a GPU the calling thread's current device, or says why it cannot:
// the one check every GPU factory starts with. CUDA builds only.
#ifndef KVCACHE_GPU_SELECT_GPU_H_
#define KVCACHE_GPU_SELECT_GPU_H_

#include "absl/status/status.h"

namespace kvcache {

// OK once `device` is current on this thread; Unavailable naming CUDA's
// reason when there is no usable GPU or no such device.
absl::Status SelectGpu(int device);

}  // namespace kvcache

#endif  // KVCACHE_GPU_SELECT_GPU_H_
