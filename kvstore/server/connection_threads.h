// Serves a listening socket with one thread per connection: the pattern of
// the daemon's plain-socket paths (the data port and the same-host socket),
// whose handlers block in read and write and so must not run on gRPC's
// threads. Bounds the number of connections; reaps finished threads; on
// Shutdown cuts every connection and joins every thread.
//
// Thread safety: Start and Shutdown from one thread; handlers run on their own.
#ifndef KVCACHE_KVSTORE_SERVER_CONNECTION_THREADS_H_
#define KVCACHE_KVSTORE_SERVER_CONNECTION_THREADS_H_

#include <functional>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"

namespace kvcache {

class ConnectionThreads {
 public:
  // Takes ownership of `listen_fd`. `serve(fd)` handles one connection; the
  // fd is closed after it returns. Connections beyond `max_connections` are
  // closed at once.
  ConnectionThreads(int listen_fd, int max_connections, std::function<void(int)> serve);
  ~ConnectionThreads();

  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void AcceptLoop() ABSL_LOCKS_EXCLUDED(mu_);
  void ReapFinished() ABSL_LOCKS_EXCLUDED(mu_);

  const int listen_fd_;
  const int max_connections_;
  const std::function<void(int)> serve_;
  std::thread acceptor_;
  Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, std::pair<std::thread, int>> connections_ ABSL_GUARDED_BY(mu_);  // id -> thread, fd
  std::vector<int> finished_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_CONNECTION_THREADS_H_
