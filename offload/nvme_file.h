// The NVMe tier's backing store: a preallocated file (or a raw block device)
// opened with O_DIRECT, read and written in batches of 4 KiB-aligned ops.
//
// Two engines do the I/O. io_uring, with the file registered and, when the
// caller registers them, its buffers (the host arena's pages, so reads land
// in them with no copy; an op's pieces go as one fixed-buffer sub-op each)
// keeps up to `queue_depth` ops in flight from the calling thread. Where io_uring cannot be set up
// (an old kernel, seccomp), a pool of `queue_depth` threads does pread/pwrite instead; that choice
// is logged once. Options::engine forces either.
//
// Thread safety: RunBatch may be called from several threads at once; the
// io_uring engine serializes batches, the thread pool interleaves them.
#ifndef KVCACHE_OFFLOAD_NVME_FILE_H_
#define KVCACHE_OFFLOAD_NVME_FILE_H_

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "offload/nvme_fault_point.h"

namespace kvcache {

// One read or write of a contiguous file range, from one buffer (`data`) or
// gathered from / scattered to several (`pieces`, in order; then `data` is
// unused). A record that spans several arena pages is one op, so the queue
// depth counts records in flight, as fio's iodepth counts blocks.
struct NvmeIo {
  bool write = false;
  uint64_t offset = 0;      // multiple of 4096
  uint8_t* data = nullptr;  // 4096-aligned
  uint64_t length = 0;      // multiple of 4096; with pieces, their sum
  std::vector<iovec> pieces;  // each 4096-aligned, a multiple of 4096 long
  // If set, called once the op has completed successfully, while the rest of
  // the batch is still in flight (on the calling thread for io_uring, on a
  // pool thread otherwise), so work on its data overlaps the I/O.
  std::function<void(NvmeIo&)> on_done;
  absl::Status status;  // set by RunBatch
};

class NvmeFile {
 public:
  enum class Engine { kAuto, kIoUring, kThreads };
  struct Options {
    std::string path;
    uint64_t bytes = 0;  // a file is preallocated to this; a device must hold it
    Engine engine = Engine::kAuto;
    int queue_depth = 8;
    NvmeFaultPoint* faults = nullptr;  // tests only: injected disk faults; not owned
  };

  // INVALID_ARGUMENT for bad options; UNAVAILABLE if the path cannot be
  // opened with O_DIRECT or preallocated (the message says which and why);
  // with engine kIoUring, UNAVAILABLE if io_uring cannot be set up.
  static absl::StatusOr<std::unique_ptr<NvmeFile>> Open(const Options& options);
  ~NvmeFile();

  uint64_t bytes() const { return bytes_; }
  // "io_uring" or "threads".
  const char* engine_name() const;

  // Registers [base, base + length) with io_uring so ops inside it use
  // fixed buffers. Best effort: returns why not (the ops still work).
  absl::Status RegisterBuffers(uint8_t* base, uint64_t length);

  // Runs every op, up to queue_depth in flight, and returns when all are
  // done; each op's status says how it went (INVALID_ARGUMENT for a
  // misaligned op, OUT_OF_RANGE past bytes(), the errno otherwise). Returns
  // the first failure, or OK.
  absl::Status RunBatch(absl::Span<NvmeIo> ops);

  class Backend;  // the engine; defined in nvme_file.cc

 private:
  NvmeFile(int fd, uint64_t bytes, std::unique_ptr<Backend> backend, NvmeFaultPoint* faults);

  const int fd_;
  const uint64_t bytes_;
  NvmeFaultPoint* const faults_;
  std::unique_ptr<Backend> backend_;
};

}  // namespace kvcache

#endif  // KVCACHE_OFFLOAD_NVME_FILE_H_
