// The lease releases a same-host client owes its daemon, sent ahead of its
// next request instead of each in a message of its own.
//
// Why: a release needs no answer, but its arrival wakes the daemon's thread,
// and where client and daemon share a CPU (common/cpu_pin.h) that wake-up is
// two more context switches inside the client's next fetch. Written ahead of
// the next request, in the same write, it costs no wake-up of its own: a
// 4 KiB lease fetch's round trip went from 21 us to 13 us on a 2-vCPU VM
// (docs/BENCHMARKS.md, "Same-host lease Fetch at 0.8x memcpy").
//
// So Add() only records a release, and the owner takes the owed ones
// (Take) into its next write. Releases no request took within `max_delay`
// (at most; sometimes sooner) are handed to `send` on this object's thread,
// so a client that goes quiet still gives its blocks back soon: until the
// daemon reads a release, the lease's blocks stay pinned and cannot be
// evicted.
//
// Thread safety: Add and Take may be called from any thread. `send` runs on
// the object's own thread (and once in the destructor) and must take the
// owner's lock for the socket, which the owner must not hold while
// destroying this object.
#ifndef KVCACHE_CLIENT_OWED_RELEASES_H_
#define KVCACHE_CLIENT_OWED_RELEASES_H_

#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/mutex.h"

namespace kvcache {

class OwedReleases {
 public:
  // `send` writes the framed kRelease messages it is given on the socket.
  using Send = std::function<void(const std::string& framed)>;
  OwedReleases(absl::Duration max_delay, Send send);
  // Stops the thread, then hands what is still owed to `send`.
  ~OwedReleases();
  OwedReleases(const OwedReleases&) = delete;
  OwedReleases& operator=(const OwedReleases&) = delete;

  // Owes the daemon the release of `lease_id`: the caller is done with the
  // lease's blocks. The first call starts the thread.
  void Add(uint64_t lease_id) ABSL_LOCKS_EXCLUDED(mu_);
  // The owed releases as framed kRelease messages (proto/local_wire.h), to
  // be written ahead of a request; "" when none. None are owed afterwards.
  std::string Take() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);

  const absl::Duration max_delay_;
  const Send send_;
  Mutex mu_;
  CondVar wake_;
  std::string framed_ ABSL_GUARDED_BY(mu_);  // the owed kRelease messages
  // The thread watches (wakes every max_delay_) from an add until a period
  // passes with none; only an add that finds it not watching wakes it, so a
  // busy client's adds cost no wake-up each.
  bool armed_ ABSL_GUARDED_BY(mu_) = false;
  bool added_ ABSL_GUARDED_BY(mu_) = false;  // in the current period
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(mu_);  // started by the first Add
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_OWED_RELEASES_H_
