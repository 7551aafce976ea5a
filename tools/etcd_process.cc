#include "tools/etcd_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace kvcache {
namespace {

// A port nobody listens on now (the kernel's pick for port 0). Another
// process could take it before etcd binds it; Start retries once for that.
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// Whether etcd's HTTP /health on `port` says it is ready. Asked over plain
// HTTP/1.0 because etcd accepts connections before it serves them, and a
// gRPC channel that connects in that window waits out a connect timeout.
bool EtcdHealthy(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{0, 500 * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const char request[] = "GET /health HTTP/1.0\r\n\r\n";
    if (write(fd, request, sizeof(request) - 1) == sizeof(request) - 1) {
      char buf[512];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) reply.append(buf, n);
    }
  }
  close(fd);
  return reply.find("\"health\":\"true\"") != std::string::npos;
}

std::string FindEtcd() {
  if (const char* path = std::getenv("PATH")) {
    std::string dirs = path;
    size_t start = 0;
    while (start <= dirs.size()) {
      const size_t end = std::min(dirs.find(':', start), dirs.size());
      const std::string candidate = dirs.substr(start, end - start) + "/etcd";
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
      start = end + 1;
    }
  }
  return access("/usr/bin/etcd", X_OK) == 0 ? "/usr/bin/etcd" : "";
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdProcess>> EtcdProcess::Start(
    const Tls* tls, std::vector<std::string> extra_flags) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  static int counter = 0;
  absl::Status last;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/etcd-", getpid(), "-", counter++);
    std::filesystem::remove_all(dir);
    std::unique_ptr<EtcdProcess> etcd(
        new EtcdProcess(dir, FreePort(), FreePort(), FreePort(),
                        tls == nullptr ? std::nullopt : std::optional<Tls>(*tls), extra_flags));
    last = etcd->Spawn();
    if (last.ok()) return etcd;
    if (absl::IsNotFound(last)) break;
  }
  return last;
}

absl::Status EtcdProcess::Spawn() {
  const std::string binary = FindEtcd();
  if (binary.empty()) {
    return absl::NotFoundError(
        "etcd is not installed (Debian's etcd-server); run tools/scripts/install_deps.sh");
  }
  const std::string client_url =
      absl::StrCat(tls_.has_value() ? "https" : "http", "://127.0.0.1:", client_port_);
  const std::string peer_url = absl::StrCat("http://127.0.0.1:", peer_port_);
  std::vector<std::string> args = {binary,
                                   "--name=kvcache-test",
                                   "--data-dir=" + data_dir_,
                                   "--listen-client-urls=" + client_url,
                                   "--advertise-client-urls=" + client_url,
                                   "--listen-peer-urls=" + peer_url,
                                   "--initial-advertise-peer-urls=" + peer_url,
                                   "--initial-cluster=kvcache-test=" + peer_url,
                                   "--logger=zap",
                                   "--log-level=error",
                                   absl::StrCat("--listen-metrics-urls=http://127.0.0.1:",
                                                health_port_)};
  if (tls_.has_value()) {
    for (const std::string& a : {"--cert-file=" + tls_->cert, "--key-file=" + tls_->key,
                                 "--trusted-ca-file=" + tls_->ca,
                                 std::string("--client-cert-auth")}) {
      args.push_back(a);
    }
  }
  std::vector<char*> argv;
  args.insert(args.end(), extra_flags_.begin(), extra_flags_.end());
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::filesystem::create_directories(data_dir_);
  const std::string log = data_dir_ + ".log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  const int err = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return absl::InternalError(absl::StrCat("spawning etcd failed: ", err));

  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (absl::Now() < give_up) {
    if (EtcdHealthy(health_port_)) return absl::OkStatus();
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      return absl::InternalError(
          absl::StrCat("etcd exited early with status ", status, "; see ", log));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  Kill();
  return absl::DeadlineExceededError("etcd did not answer within 20 s; see " + log);
}

void EtcdProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = 0;
}

absl::Status EtcdProcess::Restart() {
  Kill();
  return Spawn();
}

EtcdProcess::~EtcdProcess() {
  Kill();
  std::filesystem::remove_all(data_dir_);
}

}  // namespace kvcache
