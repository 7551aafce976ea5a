// The CUDA stream type, named without including CUDA's headers, so that
// interfaces taking a stream compile where CUDA is not installed.
// `GpuStream` is the same type as `cudaStream_t`; nullptr is the legacy
// default stream.
#ifndef KVCACHE_GPU_GPU_STREAM_H_
#define KVCACHE_GPU_GPU_STREAM_H_

struct CUstream_st;

namespace kvcache {

using GpuStream = CUstream_st*;

}  // namespace kvcache

#endif  // KVCACHE_GPU_GPU_STREAM_H_
