// For the wire fuzzers: a real kvstored (the binary in $KVSTORED) started
// once per fuzzing process, spoken to over its data port and its same-host
// socket, and checked after every input. The daemon is Bazel's build, so
// libFuzzer sees no coverage inside it: these targets mutate inputs that
// the harness turns into protocol frames (some well formed, some not), and
// what they catch is a daemon that dies, hangs or stops answering.
//
// Thread safety: one fuzzing thread.
#ifndef KVCACHE_TOOLS_FUZZ_DAEMON_UNDER_FUZZ_H_
#define KVCACHE_TOOLS_FUZZ_DAEMON_UNDER_FUZZ_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace kvcache::fuzz {

struct DaemonUnderFuzz {
  pid_t pid = -1;
  int data_port = 0;
  std::string socket_path;
};

inline DaemonUnderFuzz& Daemon() {
  static DaemonUnderFuzz daemon;
  return daemon;
}

[[noreturn]] inline void Fail(const char* what) {
  std::fprintf(stderr, "daemon under fuzz: %s\n", what);
  __builtin_trap();
}

inline void StopDaemon() {
  if (Daemon().pid > 0) {
    kill(Daemon().pid, SIGKILL);
    waitpid(Daemon().pid, nullptr, 0);
    unlink(Daemon().socket_path.c_str());
  }
}

inline int FreeTcpPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Starts $KVSTORED and waits until it serves; its stderr goes to
// $KVSTORED_LOG (default /dev/null).
inline void StartDaemon() {
  const char* binary = std::getenv("KVSTORED");
  if (binary == nullptr) Fail("set KVSTORED to a kvstored binary");
  DaemonUnderFuzz& d = Daemon();
  d.data_port = FreeTcpPort();
  d.socket_path = "/tmp/kvfuzz-" + std::to_string(getpid()) + ".sock";
  const std::string port_file = "/tmp/kvfuzz-" + std::to_string(getpid()) + ".port";
  unlink(port_file.c_str());
  std::vector<std::string> args = {
      binary, "--listen=127.0.0.1:0", "--port_file=" + port_file,
      "--data_port=" + std::to_string(d.data_port), "--local_socket=" + d.socket_path,
      "--host_capacity=64MiB", "--page_size=64KiB", "--max_block_size=4MiB",
      "--local_staging=16MiB", "--client_stall_timeout_s=1", "--drain_timeout_s=1"};
  d.pid = fork();
  if (d.pid == 0) {
    const char* log = std::getenv("KVSTORED_LOG");
    const int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary, argv.data());
    _exit(127);
  }
  for (int waited = 0; waited < 3000; ++waited) {
    int port = 0;
    if (std::ifstream(port_file) >> port; port > 0) {
      unlink(port_file.c_str());
      std::atexit(StopDaemon);
      return;
    }
    if (waitpid(d.pid, nullptr, WNOHANG) == d.pid) Fail("kvstored exited at start");
    usleep(10 * 1000);
  }
  Fail("kvstored did not start within 30 s");
}

// Traps (a libFuzzer crash, with the input saved) if the daemon died.
inline void CheckAlive() {
  int status = 0;
  if (waitpid(Daemon().pid, &status, WNOHANG) == Daemon().pid) {
    std::fprintf(stderr, "kvstored died: %s %d\n", WIFSIGNALED(status) ? "signal" : "exit",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    Daemon().pid = -1;
    __builtin_trap();
  }
}

inline int ConnectTcp(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

inline int ConnectUnix(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Writes what it can (the daemon may have closed: that is an answer too).
inline bool Send(int fd, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Both protocols frame a message as u32 | u32 | body (magic or type, then
// the length, which may lie).
inline void SendFrame(int fd, uint32_t first, uint32_t length, const std::string& body) {
  const uint32_t head[2] = {first, length};
  Send(fd, head, sizeof(head)) && Send(fd, body.data(), body.size());
}

// Reads whatever has arrived within `wait_ms` (fds passed with it, such as
// the same-host welcome's, are closed by the kernel: no control buffer).
// False once the daemon closed the connection.
inline bool Drain(int fd, int wait_ms) {
  static uint8_t sink[1 << 16];
  pollfd p{fd, POLLIN, 0};
  while (poll(&p, 1, wait_ms) == 1) {
    const ssize_t r = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
    if (r == 0) return false;
    if (r < 0) return errno == EAGAIN;
    wait_ms = 0;
  }
  return true;
}

// Ends a connection: no more requests, every reply read, closed. Traps if
// the daemon has not closed its side within `limit_ms` (a hang).
inline void Finish(int fd, int limit_ms) {
  shutdown(fd, SHUT_WR);
  bool closed = false;
  for (int waited = 0; waited < limit_ms && !closed; waited += 50) closed = !Drain(fd, 50);
  close(fd);
  if (!closed) Fail("the daemon kept a finished connection open");
}

}  // namespace kvcache::fuzz

#endif  // KVCACHE_TOOLS_FUZZ_DAEMON_UNDER_FUZZ_H_
