// Whether a cluster node answers, shared by every ClusterClient of the
// process: a node that one of them saw fail in transport is skipped by all
// of them at once (not once per client, each paying its own failed call or
// deadline), until a prober reaches it again.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_CLIENT_NODE_HEALTH_H_
#define KVCACHE_CLIENT_NODE_HEALTH_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace kvcache {

class NodeHealth {
 public:
  // The health of the node at `address`, shared with every other holder in
  // this process while any holds it.
  static std::shared_ptr<NodeHealth> Of(const std::string& address);

  bool up() const { return up_.load(std::memory_order_acquire); }
  // A call to the node failed in transport: it is down for everyone.
  void Failed() {
    failures_.fetch_add(1, std::memory_order_relaxed);
    up_.store(false, std::memory_order_release);
  }
  // A probe reached it: it is up again. Clients made before this may sit in
  // gRPC's reconnect backoff; a holder whose client predates the returned
  // generation makes a fresh one.
  uint64_t Answered() {
    const uint64_t g = generation_.fetch_add(1, std::memory_order_acq_rel) + 1;
    up_.store(true, std::memory_order_release);
    return g;
  }
  // How often it came back up.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> up_{true};
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> failures_{0};
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_NODE_HEALTH_H_
