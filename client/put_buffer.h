// Memory a same-host daemon reads a block's bytes from where they lie: a
// range of the staging space the daemon shares with this client's
// connection. A Put whose payload (borrowed) lies inside one skips the
// client's copy into staging: the client only hashes it, and the daemon
// copies it into its arena and verifies that hash there. A worker that
// writes its KV into a put buffer (a GPU's gather, a CPU engine's pack)
// saves one full pass over every block it puts.
//
// A Put of bytes in a put buffer works over every path: over the network
// they are sent like any other payload.
//
// Thread safety: the memory is the caller's to write; do not write a block's
// bytes while a Put of them runs (the daemon refuses a block whose bytes
// changed under it: DATA_LOSS).
#ifndef KVCACHE_CLIENT_PUT_BUFFER_H_
#define KVCACHE_CLIENT_PUT_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

namespace kvcache {

class LocalPathClient;

class PutBuffer {
 public:
  // `bytes` of `local`'s staging space, held until destroyed.
  // FAILED_PRECONDITION if the daemon takes no puts from staging;
  // INVALID_ARGUMENT for 0 bytes;
  // RESOURCE_EXHAUSTED if put buffers would then hold more than half of the
  // staging space (kvstored --local_staging), which the client's other puts
  // need.
  static absl::StatusOr<std::unique_ptr<PutBuffer>> Create(std::shared_ptr<LocalPathClient> local,
                                                           size_t bytes);
  ~PutBuffer();
  PutBuffer(const PutBuffer&) = delete;
  PutBuffer& operator=(const PutBuffer&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  PutBuffer(std::shared_ptr<LocalPathClient> local, uint8_t* data, size_t size)
      : local_(std::move(local)), data_(data), size_(size) {}

  // Kept alive, so the mapping is too.
  const std::shared_ptr<LocalPathClient> local_;
  uint8_t* const data_;
  const size_t size_;
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_PUT_BUFFER_H_
