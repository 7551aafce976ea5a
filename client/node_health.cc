#include "client/node_health.h"

#include "absl/container/flat_hash_map.h"
#include "common/mutex.h"

namespace kvcache {

std::shared_ptr<NodeHealth> NodeHealth::Of(const std::string& address) {
  static Mutex mu;
  static auto* by_address = new absl::flat_hash_map<std::string, std::weak_ptr<NodeHealth>>();
  MutexLock lock(&mu);
  std::shared_ptr<NodeHealth> health = (*by_address)[address].lock();
  if (health != nullptr) return health;
  // Forget nodes no client holds any more before adding one.
  absl::erase_if(*by_address, [](const auto& entry) { return entry.second.expired(); });
  health = std::make_shared<NodeHealth>();
  (*by_address)[address] = health;
  return health;
}

}  // namespace kvcache
