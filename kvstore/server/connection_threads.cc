#include "kvstore/server/connection_threads.h"

#include <sys/socket.h>
#include <unistd.h>

namespace kvcache {

ConnectionThreads::ConnectionThreads(int listen_fd, int max_connections,
                                     std::function<void(int)> serve)
    : listen_fd_(listen_fd), max_connections_(max_connections), serve_(std::move(serve)) {
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

ConnectionThreads::~ConnectionThreads() { Shutdown(); }

void ConnectionThreads::Shutdown() {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
    for (auto& [id, conn] : connections_) shutdown(conn.second, SHUT_RDWR);
  }
  acceptor_.join();
  close(listen_fd_);
  std::map<int, std::pair<std::thread, int>> connections;
  {
    MutexLock lock(&mu_);
    connections.swap(connections_);
  }
  for (auto& [id, conn] : connections) conn.first.join();
}

void ConnectionThreads::ReapFinished() {
  std::vector<std::thread> done;
  {
    MutexLock lock(&mu_);
    for (int id : finished_) {
      auto it = connections_.find(id);
      if (it == connections_.end()) continue;
      done.push_back(std::move(it->second.first));
      connections_.erase(it);
    }
    finished_.clear();
  }
  for (std::thread& t : done) t.join();
}

void ConnectionThreads::AcceptLoop() {
  while (true) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    ReapFinished();
    MutexLock lock(&mu_);
    if (stopping_) {
      if (fd >= 0) close(fd);
      return;
    }
    if (fd < 0) continue;
    if (static_cast<int>(connections_.size()) >= max_connections_) {
      close(fd);  // the client falls back to another path
      continue;
    }
    const int id = next_id_++;
    connections_[id] = {std::thread([this, fd, id] {
                          serve_(fd);
                          // Closed under the lock, so Shutdown never calls
                          // shutdown() on a reused fd.
                          MutexLock done_lock(&mu_);
                          close(fd);
                          finished_.push_back(id);
                        }),
                        fd};
  }
}

}  // namespace kvcache
