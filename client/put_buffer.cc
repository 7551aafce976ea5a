#include "client/put_buffer.h"

#include <utility>

#include "client/local_path_client.h"

namespace kvcache {

absl::StatusOr<std::unique_ptr<PutBuffer>> PutBuffer::Create(std::shared_ptr<LocalPathClient> local,
                                                             size_t bytes) {
  if (local == nullptr) return absl::FailedPreconditionError("no same-host path to the daemon");
  absl::StatusOr<uint8_t*> data = local->ReserveStaging(bytes);
  if (!data.ok()) return data.status();
  return std::unique_ptr<PutBuffer>(new PutBuffer(std::move(local), *data, bytes));
}

PutBuffer::~PutBuffer() { local_->FreeStaging(data_, size_); }

}  // namespace kvcache
