// libFuzzer target: a real kvstored's data port, fed one connection per
// input. The input is a program of frames: raw bytes, fetch and put frames
// whose bodies are arbitrary or well formed, lengths that lie, payloads cut
// short or with a wrong checksum, and reads of the replies. After each
// input the connection ends and the daemon must close its side promptly
// and still be alive (daemon_under_fuzz.h).
#include <xxhash.h>

#include "proto/data_port_wire.h"
#include "tools/fuzz/daemon_under_fuzz.h"
#include "tools/fuzz/wire_program.h"

namespace fz = kvcache::fuzz;

namespace {

void Put(int fd, fz::Input& in, bool honest) {
  const std::string payload(in.U16() % 20000, static_cast<char>(in.Byte()));
  const uint64_t checksum = XXH3_64bits(payload.data(), payload.size());
  const std::string header =
      fz::PutHeaderBody(in, payload.size(), honest ? checksum : checksum ^ in.U32());
  fz::SendFrame(fd, kvcache::kDataPortPutMagic, header.size(), header);
  // A dishonest put may also stop short of its payload.
  fz::Send(fd, payload.data(), honest ? payload.size() : payload.size() / (1 + in.Byte() % 3));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fz::StartDaemon();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = fz::ConnectTcp(fz::Daemon().data_port);
  if (fd < 0) fz::Fail("the data port refused a connection");
  fz::Input in(data, size);
  for (int op = 0; op < 32 && !in.empty(); ++op) {
    switch (in.Byte() % 8) {
      case 0: {  // raw bytes
        const std::string raw = in.Bytes(in.Byte() % 64);
        fz::Send(fd, raw.data(), raw.size());
        break;
      }
      case 1: {  // a fetch frame around arbitrary bytes
        const std::string body = in.Bytes(in.U16() % 512);
        fz::SendFrame(fd, kvcache::kDataPortMagic, body.size(), body);
        break;
      }
      case 2: {  // a frame whose length lies
        const uint32_t magic = in.Byte() % 2 ? kvcache::kDataPortMagic : kvcache::kDataPortPutMagic;
        fz::SendFrame(fd, magic, in.U32(), in.Bytes(in.Byte() % 64));
        break;
      }
      case 3:
        Put(fd, in, /*honest=*/true);
        break;
      case 4:
        Put(fd, in, /*honest=*/false);
        break;
      case 5: {  // a well-formed fetch of small keys
        const std::string body = fz::FetchRequestBody(in);
        fz::SendFrame(fd, kvcache::kDataPortMagic, body.size(), body);
        break;
      }
      case 6:
        fz::Drain(fd, 1);
        break;
      default: {  // a put frame around an arbitrary header
        const std::string header = in.Bytes(in.Byte() % 128);
        fz::SendFrame(fd, kvcache::kDataPortPutMagic, header.size(), header);
        break;
      }
    }
  }
  fz::Finish(fd, 5000);
  fz::CheckAlive();
  return 0;
}
