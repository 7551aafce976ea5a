// libFuzzer target: a real kvstored's same-host socket, fed one connection
// per input. The input is a program of messages (u32 type | u32 length |
// body): every type with arbitrary bodies, lengths that lie, well-formed
// fetch leases and put begins of small keys, commits and releases of lease
// ids that may or may not exist, and reads of the replies. After each input
// the connection ends (whatever leases and staging it holds) and the daemon
// must close its side promptly and still be alive (daemon_under_fuzz.h).
#include "proto/local_wire.h"
#include "tools/fuzz/daemon_under_fuzz.h"
#include "tools/fuzz/wire_program.h"

namespace fz = kvcache::fuzz;

namespace {

void Message(int fd, kvcache::LocalMessage type, const std::string& body) {
  fz::SendFrame(fd, static_cast<uint32_t>(type), body.size(), body);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fz::StartDaemon();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = fz::ConnectUnix(fz::Daemon().socket_path);
  if (fd < 0) fz::Fail("the same-host socket refused a connection");
  fz::Input in(data, size);
  for (int op = 0; op < 32 && !in.empty(); ++op) {
    switch (in.Byte() % 8) {
      case 0: {  // raw bytes
        const std::string raw = in.Bytes(in.Byte() % 64);
        fz::Send(fd, raw.data(), raw.size());
        break;
      }
      case 1: {  // any type, arbitrary body
        const uint32_t type = in.Byte() % 13;
        const std::string body = in.Bytes(in.U16() % 512);
        fz::SendFrame(fd, type, body.size(), body);
        break;
      }
      case 2: {  // a length that lies
        const uint32_t type = in.Byte() % 13;
        fz::SendFrame(fd, type, in.U32(), in.Bytes(in.Byte() % 64));
        break;
      }
      case 3:  // a well-formed fetch lease (or GPU lease) of small keys
        Message(fd, in.Byte() % 4 ? kvcache::LocalMessage::kFetchLease
                                  : kvcache::LocalMessage::kGpuLease,
                fz::FetchRequestBody(in));
        break;
      case 4:  // a put begin of a small key, any size and checksum
        if (in.Byte() % 2) {
          Message(fd, kvcache::LocalMessage::kPutBegin,
                  fz::PutHeaderBody(in, in.U32() % (8 << 20), in.U32()));
        } else {  // or a one-trip put of staged bytes, at any offset
          std::string body;
          fz::LengthField(body, 1, fz::PutHeaderBody(in, in.U32() % (8 << 20), in.U32()));
          fz::VarintField(body, 2, in.Byte() % 2 ? in.U32() : uint64_t{in.U32()} << 32 | in.U32());
          Message(fd, kvcache::LocalMessage::kPutStaged, body);
        }
        break;
      case 5: {  // commit or release a lease id that may exist (ids start small)
        std::string body;
        fz::VarintField(body, 1, in.Byte() % 16);
        Message(fd, in.Byte() % 2 ? kvcache::LocalMessage::kPutCommit : kvcache::LocalMessage::kRelease,
                body);
        break;
      }
      case 6:
        fz::Drain(fd, 1);
        break;
      default: {  // a direct-read report of arbitrary reads
        std::string report;
        for (int i = in.Byte() % 4; i > 0; --i) fz::LengthField(report, 1, in.Bytes(in.Byte() % 48));
        if (in.Byte() % 2) fz::VarintField(report, 2, in.U32());
        Message(fd, kvcache::LocalMessage::kDirectReads, report);
        break;
      }
    }
  }
  fz::Finish(fd, 5000);
  fz::CheckAlive();
  return 0;
}
