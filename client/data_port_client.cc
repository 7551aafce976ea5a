#include "client/data_port_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "client/key/checksum.h"
#include "proto/data_port_wire.h"

namespace kvcache {
namespace {

// Payload is read (and hashed) in pieces of this size.
constexpr size_t kRecvPiece = 256 << 10;

bool ReadFull(int fd, void* buf, size_t n) {
  auto* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    const ssize_t r = recv(fd, p, n, MSG_WAITALL);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool WriteFull(int fd, const void* buf, size_t n) {
  auto* p = static_cast<const uint8_t*>(buf);
  while (n > 0) {
    const ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

DataPortClient::DataPortClient(const sockaddr_storage& address, socklen_t address_len,
                               absl::Duration timeout, size_t max_idle)
    : address_(address), address_len_(address_len), timeout_(timeout), max_idle_(max_idle) {}

DataPortClient::~DataPortClient() {
  MutexLock lock(&mu_);
  for (int fd : idle_) close(fd);
}

int DataPortClient::Acquire() {
  {
    MutexLock lock(&mu_);
    if (!idle_.empty()) {
      const int fd = idle_.back();
      idle_.pop_back();
      return fd;
    }
  }
  const int fd = socket(address_.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv = absl::ToTimeval(timeout_);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address_), address_len_) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void DataPortClient::Release(int fd) {
  MutexLock lock(&mu_);
  if (idle_.size() < max_idle_) {
    idle_.push_back(fd);
  } else {
    close(fd);
  }
}

DataPortClient::Outcome DataPortClient::Fetch(const v1::FetchRequest& request,
                                              absl::Span<const FetchTarget> targets, bool verify,
                                              size_t* completed) {
  auto broken = [](const std::string& why) {
    return Outcome{absl::UnavailableError(absl::StrCat("data port: ", why)), true};
  };
  const int fd = Acquire();
  if (fd < 0) return broken("cannot connect");
  // Header and body in one send.
  std::string wire(8, '\0');
  request.AppendToString(&wire);
  const uint32_t head[2] = {kDataPortMagic, static_cast<uint32_t>(wire.size() - 8)};
  std::memcpy(wire.data(), head, sizeof(head));
  if (!WriteFull(fd, wire.data(), wire.size())) {
    close(fd);
    return broken("request not sent");
  }
  uint64_t received = 0;  // bytes of targets[*completed] so far
  while (true) {
    // Both frames start with at least 12 bytes: read those in one go.
    static_assert(kEndFrameHeaderBytes <= kChunkFrameHeaderBytes);
    uint8_t frame[kChunkFrameHeaderBytes];
    if (!ReadFull(fd, frame, kEndFrameHeaderBytes)) {
      close(fd);
      return broken("connection closed mid-reply");
    }
    uint32_t kind;
    std::memcpy(&kind, frame, 4);
    if (kind == kEndFrame) {
      uint32_t code, length;
      std::memcpy(&code, frame + 4, 4);
      std::memcpy(&length, frame + 8, 4);
      std::string message(std::min(length, kMaxEndMessageBytes), '\0');
      if (length > kMaxEndMessageBytes || !ReadFull(fd, message.data(), message.size())) {
        close(fd);
        return broken("bad END frame");
      }
      Release(fd);
      return Outcome{absl::Status(static_cast<absl::StatusCode>(code), message), false};
    }
    if (kind != kChunkFrame ||
        !ReadFull(fd, frame + kEndFrameHeaderBytes,
                  kChunkFrameHeaderBytes - kEndFrameHeaderBytes)) {
      close(fd);
      return broken("bad frame");
    }
    const FetchChunkHeader h = DecodeChunkFrameHeader(frame);
    if (*completed >= targets.size() || h.item_index != *completed) {
      close(fd);
      return broken("reply out of order");
    }
    const FetchTarget& t = targets[*completed];
    if (h.offset != t.offset + received || h.data_length > t.dest.size() - received) {
      close(fd);
      return broken("reply with a range that was not asked for");
    }
    // Hash a whole block while it arrives: each piece is hashed while it is
    // still in cache and while the daemon sends the next one.
    const bool whole_block = h.offset == 0 && h.data_length == h.block_size &&
                             t.dest.size() == h.block_size;
    std::optional<ChecksumStream> checksum;
    if (verify && whole_block) checksum.emplace();
    for (uint64_t done = 0; done < h.data_length;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kRecvPiece, h.data_length - done));
      uint8_t* piece = t.dest.data() + received + done;
      if (!ReadFull(fd, piece, n)) {
        close(fd);
        return broken("connection closed mid-block");
      }
      if (checksum.has_value()) checksum->Update({piece, n});
      done += n;
    }
    received += h.data_length;
    if (received < t.dest.size()) continue;
    if (checksum.has_value() && checksum->Digest() != h.block_checksum) {
      close(fd);  // the rest of the reply is unread: the connection is spent
      return Outcome{absl::DataLossError(absl::StrCat("block ", t.key.ToHex(),
                                                      " failed its checksum")),
                     false};
    }
    ++*completed;
    received = 0;
  }
}

}  // namespace kvcache
