// For the wire fuzzers: the fuzzer's input read as a program (op bytes and
// their fields), and the protobuf wire format written by hand, enough to
// build requests that parse (a fuzzer built outside Bazel links no
// protobuf). Keys and namespaces come from small sets so that the puts and
// fetches of one input meet.
//
// Thread safety: plain values and functions.
#ifndef KVCACHE_TOOLS_FUZZ_WIRE_PROGRAM_H_
#define KVCACHE_TOOLS_FUZZ_WIRE_PROGRAM_H_

#include <algorithm>
#include <cstdint>
#include <string>

namespace kvcache::fuzz {

// The fuzzer's bytes, consumed front to back; zeros once used up.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return at_ >= size_; }
  uint8_t Byte() { return at_ < size_ ? data_[at_++] : 0; }
  uint32_t U16() { return Byte() | uint32_t{Byte()} << 8; }
  uint32_t U32() { return U16() | U16() << 16; }
  std::string Bytes(size_t n) {
    n = std::min(n, size_ - std::min(at_, size_));
    std::string s(reinterpret_cast<const char*>(data_ + at_), n);
    at_ += n;
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

// Protobuf wire format.
inline void Varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
inline void LengthField(std::string& out, int field, const std::string& bytes) {
  Varint(out, static_cast<uint64_t>(field) << 3 | 2);
  Varint(out, bytes.size());
  out += bytes;
}
inline void VarintField(std::string& out, int field, uint64_t v) {
  Varint(out, static_cast<uint64_t>(field) << 3);
  Varint(out, v);
}
inline void Fixed64Field(std::string& out, int field, uint64_t v) {
  Varint(out, static_cast<uint64_t>(field) << 3 | 1);
  out.append(reinterpret_cast<const char*>(&v), 8);
}

// One of 8 keys and 2 namespaces, so puts and fetches of inputs meet.
inline std::string SmallKey(uint8_t b) { return std::string(16 + b % 8, static_cast<char>('a' + b % 8)); }
inline std::string SmallNamespace(uint8_t b) { return b % 2 ? "fuzz-ns" : "other-ns"; }

// A FetchRequest (kvcache.v1) of up to 4 small keys with ranges from `in`.
inline std::string FetchRequestBody(Input& in) {
  std::string body;
  LengthField(body, 1, SmallNamespace(in.Byte()));
  for (int i = in.Byte() % 5; i > 0; --i) {
    std::string item;
    LengthField(item, 1, SmallKey(in.Byte()));
    if (in.Byte() % 2) VarintField(item, 2, in.U16());
    if (in.Byte() % 2) VarintField(item, 3, in.U16());
    LengthField(body, 2, item);
  }
  if (in.Byte() % 2) VarintField(body, 3, in.U32());
  return body;
}

// A PutBlockHeader of a small key whose payload is `payload` (its XXH3 in
// `checksum`, right or not as the caller likes).
inline std::string PutHeaderBody(Input& in, uint64_t size, uint64_t checksum) {
  std::string h;
  LengthField(h, 1, SmallNamespace(in.Byte()));
  LengthField(h, 2, SmallKey(in.Byte()));
  if (in.Byte() % 3 == 0) LengthField(h, 3, SmallKey(in.Byte()));
  VarintField(h, 4, size);
  Fixed64Field(h, 5, checksum);
  if (in.Byte() % 4 == 0) VarintField(h, 6, 1);
  return h;
}

}  // namespace kvcache::fuzz

#endif  // KVCACHE_TOOLS_FUZZ_WIRE_PROGRAM_H_
