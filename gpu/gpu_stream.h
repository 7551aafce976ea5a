// CUDA's stream and event handle types, named without including CUDA's
// headers, so that interfaces taking them compile where CUDA is not
// installed. `GpuStream` is the same type as `cudaStream_t` (nullptr is the
// legacy default stream) and `GpuEvent` as `cudaEvent_t`.
#ifndef KVCACHE_GPU_GPU_STREAM_H_
#define KVCACHE_GPU_GPU_STREAM_H_

struct CUstream_st;
struct CUevent_st;

namespace kvcache {

using GpuStream = CUstream_st*;
using GpuEvent = CUevent_st*;

}  // namespace kvcache

#endif  // KVCACHE_GPU_GPU_STREAM_H_
