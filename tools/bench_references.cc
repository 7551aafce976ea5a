#include "tools/bench_references.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/byte_stream.h"
#include "common/socket_io.h"
#include "tools/bench_rate.h"

extern char** environ;

namespace kvcache {
namespace {

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

int ListenAny(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  listen(fd, 64);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

int FreePort() {
  int port = 0;
  close(ListenAny(&port));
  return port;
}

bool WriteAll(int fd, const char* p, size_t n) {
  iovec iov = {const_cast<char*>(p), n};
  return WriteFullV(fd, &iov, 1);
}

bool ReadExactly(int fd, char* p, size_t n) { return ReadFull(fd, p, n); }

}  // namespace

absl::StatusOr<double> RawTcpGBps(size_t value_bytes, int connections, absl::Duration duration) {
  int port = 0;
  const int listener = ListenAny(&port);
  std::vector<int> senders, receivers;
  for (int i = 0; i < connections; ++i) {
    senders.push_back(Connect(port));
    receivers.push_back(accept(listener, nullptr, nullptr));
  }
  close(listener);
  // Receivers ask for one value at a time (a 1-byte request), as a GET does.
  std::vector<std::thread> servers;
  for (int i = 0; i < connections; ++i) {
    servers.emplace_back([fd = receivers[i], value_bytes] {
      std::string value(value_bytes, 'v');
      char req;
      while (read(fd, &req, 1) == 1) {
        if (!WriteAll(fd, value.data(), value.size())) break;
      }
      close(fd);
    });
  }
  std::vector<std::string> buffers(connections, std::string(value_bytes, '\0'));
  const double gbps = 1e-9 * Rate(connections, duration, [&](int i) -> uint64_t {
    if (!WriteAll(senders[i], "g", 1)) return 0;
    return ReadExactly(senders[i], buffers[i].data(), value_bytes) ? value_bytes : 0;
  });
  for (int fd : senders) close(fd);
  for (auto& t : servers) t.join();
  return gbps;
}

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(const std::string& binary,
                                                                 const Tls* tls) {
  const int port = FreePort();
  std::vector<std::string> args = {binary, "--port", std::to_string(port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--protected-mode", "no"};
  if (tls != nullptr) {
    for (const std::string& a : {std::string("--port"), std::string("0"), std::string("--tls-port"),
                                 std::to_string(port), std::string("--tls-cert-file"), tls->cert,
                                 std::string("--tls-key-file"), tls->key,
                                 std::string("--tls-ca-cert-file"), tls->ca,
                                 std::string("--tls-auth-clients"), std::string("no")}) {
      args.push_back(a);
    }
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t quiet;
  posix_spawn_file_actions_init(&quiet);
  posix_spawn_file_actions_addopen(&quiet, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  const int err = posix_spawn(&pid, binary.c_str(), &quiet, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&quiet);
  if (err != 0) return absl::NotFoundError(absl::StrCat("cannot run ", binary));
  for (int i = 0; i < 200; ++i) {
    int fd = Connect(port);
    if (fd >= 0) {
      close(fd);
      return std::unique_ptr<RedisServer>(new RedisServer(pid, port));
    }
    absl::SleepFor(absl::Milliseconds(25));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return absl::UnavailableError("redis-server did not start");
}

RedisServer::~RedisServer() {
  kill(pid_, SIGTERM);
  waitpid(pid_, nullptr, 0);
}

absl::StatusOr<double> RedisGetGBps(int port, size_t value_bytes, int connections,
                                    absl::Duration duration) {
  // SET the value once.
  {
    int fd = Connect(port);
    if (fd < 0) return absl::UnavailableError("cannot connect to redis");
    std::string value(value_bytes, 'r');
    std::string cmd = absl::StrCat("*3\r\n$3\r\nSET\r\n$5\r\nbench\r\n$", value_bytes, "\r\n",
                                   value, "\r\n");
    char ok[5];
    if (!WriteAll(fd, cmd.data(), cmd.size()) || !ReadExactly(fd, ok, 5)) {
      close(fd);
      return absl::UnavailableError("redis SET failed");
    }
    close(fd);
  }
  std::vector<int> fds;
  for (int i = 0; i < connections; ++i) fds.push_back(Connect(port));
  const std::string get = "*2\r\n$3\r\nGET\r\n$5\r\nbench\r\n";
  const std::string header = absl::StrCat("$", value_bytes, "\r\n");
  std::vector<std::string> buffers(connections,
                                   std::string(header.size() + value_bytes + 2, '\0'));
  const double gbps = 1e-9 * Rate(connections, duration, [&](int i) -> uint64_t {
    if (!WriteAll(fds[i], get.data(), get.size())) return 0;
    if (!ReadExactly(fds[i], buffers[i].data(), buffers[i].size())) return 0;
    return value_bytes;
  });
  for (int fd : fds) close(fd);
  return gbps;
}

namespace {

// A RESP command of `words`.
std::string Command(const std::string& verb, const std::vector<std::string>& keys,
                    const std::string* value_each = nullptr) {
  std::string cmd = absl::StrCat("*", 1 + keys.size() * (value_each ? 2 : 1), "\r\n$",
                                 verb.size(), "\r\n", verb, "\r\n");
  for (const std::string& k : keys) {
    absl::StrAppend(&cmd, "$", k.size(), "\r\n", k, "\r\n");
    if (value_each) absl::StrAppend(&cmd, "$", value_each->size(), "\r\n", *value_each, "\r\n");
  }
  return cmd;
}

// Stores every key (value "1"), then returns the EXISTS command and the
// reply it must get, or an error.
absl::StatusOr<std::pair<std::string, std::string>> PrepareExists(
    int port, const std::vector<std::string>& keys) {
  int fd = Connect(port);
  if (fd < 0) return absl::UnavailableError("cannot connect to redis");
  const std::string one = "1";
  const std::string mset = Command("MSET", keys, &one);
  char ok[5];
  const bool stored = WriteAll(fd, mset.data(), mset.size()) && ReadExactly(fd, ok, 5);
  close(fd);
  if (!stored) return absl::UnavailableError("redis MSET failed");
  return std::make_pair(Command("EXISTS", keys), absl::StrCat(":", keys.size(), "\r\n"));
}

}  // namespace

absl::StatusOr<double> RedisExistsKeysPerSecond(int port, const std::vector<std::string>& keys,
                                                int connections, absl::Duration duration) {
  absl::StatusOr<std::pair<std::string, std::string>> exists = PrepareExists(port, keys);
  if (!exists.ok()) return exists.status();
  // Named, not a structured binding: lambdas capture these (clang 14 cannot
  // capture a structured binding).
  const std::string& cmd = exists->first;
  const std::string& reply = exists->second;
  std::vector<int> fds;
  for (int i = 0; i < connections; ++i) fds.push_back(Connect(port));
  std::vector<std::string> buffers(connections, std::string(reply.size(), '\0'));
  const double rate = Rate(connections, duration, [&](int i) -> uint64_t {
    if (!WriteAll(fds[i], cmd.data(), cmd.size())) return 0;
    if (!ReadExactly(fds[i], buffers[i].data(), reply.size()) || buffers[i] != reply) return 0;
    return keys.size();
  });
  for (int fd : fds) close(fd);
  return rate;
}

absl::StatusOr<double> RedisExistsP50Micros(int port, const std::vector<std::string>& keys,
                                            absl::Duration duration, absl::Duration spin) {
  absl::StatusOr<std::pair<std::string, std::string>> exists = PrepareExists(port, keys);
  if (!exists.ok()) return exists.status();
  // Named, not a structured binding: lambdas capture these (clang 14 cannot
  // capture a structured binding).
  const std::string& cmd = exists->first;
  const std::string& reply = exists->second;
  const int fd = Connect(port);
  if (fd < 0) return absl::UnavailableError("cannot connect to redis");
  std::string buffer(reply.size(), '\0');
  std::vector<double> micros;
  ByteStream waiter(fd, /*owns_fd=*/false);  // for its AwaitReadable alone
  const absl::Time end = absl::Now() + duration;
  while (absl::Now() < end || micros.size() < 10) {
    const absl::Time start = absl::Now();
    const bool sent = WriteAll(fd, cmd.data(), cmd.size());
    if (sent) waiter.AwaitReadable(spin);
    if (!sent || !ReadExactly(fd, buffer.data(), reply.size()) ||
        buffer != reply) {
      close(fd);
      return absl::InternalError("redis EXISTS failed");
    }
    micros.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
  }
  close(fd);
  std::nth_element(micros.begin(), micros.begin() + micros.size() / 2, micros.end());
  return micros[micros.size() / 2];
}

}  // namespace kvcache
