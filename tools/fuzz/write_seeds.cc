// Writes the fuzzers' seed inputs (tools/fuzz/corpus/): well-formed
// FetchChunks and NVMe record headers, so that mutation starts from inputs
// that pass the checks. Run by tools/scripts/fuzz.sh --seeds; the output is
// checked in.
#include <fstream>
#include <string>

#include "offload/nvme_record.h"
#include "proto/fetch_chunk_codec.h"

namespace {

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string dir = argv[1];
  kvcache::FetchChunkHeader h;
  h.item_index = 3;
  h.block_size = 16;
  h.block_checksum = 0x1234567890abcdefull;
  h.offset = 8;
  h.data_length = 8;
  h.tier = 2;
  // The first byte is the fuzzer's split choice.
  Write(dir + "/fetch_chunk/whole", "\x05" + kvcache::EncodeFetchChunkHeader(h) + "payload!");
  h.data_length = 0;
  h.tier = 0;
  Write(dir + "/fetch_chunk/empty", "\x01" + kvcache::EncodeFetchChunkHeader(h));

  kvcache::NvmeRecordHeader n;
  n.key = std::string(32, 'k');
  n.tenant = "default";
  n.name_space = "model@0123456789abcdef0123456789abcdef";
  n.payload_bytes = 262144;
  n.payload_checksum = 42;
  n.generation = 7;
  auto sector = kvcache::EncodeNvmeHeader(n);
  if (!sector.ok()) return 1;
  Write(dir + "/nvme_header/block", std::string(sector->begin(), sector->end()));
  n.tenant.clear();
  n.name_space.clear();
  n.key = "k";
  sector = kvcache::EncodeNvmeHeader(n);
  if (!sector.ok()) return 1;
  Write(dir + "/nvme_header/short", std::string(sector->begin(), sector->end()));

  int i = 0;
  for (const char* s : {"64MiB", "1.5GiB", "0", "4096", "16KiB", "2 MiB", "1e3"}) {
    Write(dir + "/byte_size/seed-" + std::to_string(i++), s);
  }
  return 0;
}
