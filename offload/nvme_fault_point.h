// A test-only fault point at the NVMe file layer: a disk that answers EIO,
// or transfers part of an op and then fails (a short read or write), until
// the test clears it. NvmeFile consults it once per op; without one (the
// daemon's case) nothing is consulted.
//
// A short op really transfers its first half (a torn record on disk, as a
// failing drive leaves) and then fails UNAVAILABLE, as an op whose rest the
// device refused; an EIO op transfers nothing.
//
// Thread safety: every method may be called from any thread.
#ifndef KVCACHE_OFFLOAD_NVME_FAULT_POINT_H_
#define KVCACHE_OFFLOAD_NVME_FAULT_POINT_H_

#include <atomic>
#include <cstdint>

namespace kvcache {

class NvmeFaultPoint {
 public:
  enum class Fault : uint8_t { kNone, kEio, kShort };

  // From now on every read (or write) op fails with `fault`; kNone clears.
  void SetReads(Fault fault) { reads_.store(fault); }
  void SetWrites(Fault fault) { writes_.store(fault); }
  void Clear() {
    SetReads(Fault::kNone);
    SetWrites(Fault::kNone);
  }

  // The fault for the next op, counting it when there is one.
  Fault Next(bool write) {
    const Fault f = (write ? writes_ : reads_).load();
    if (f != Fault::kNone) injected_.fetch_add(1);
    return f;
  }

  // Ops that were given a fault so far.
  uint64_t injected() const { return injected_.load(); }

 private:
  std::atomic<Fault> reads_{Fault::kNone};
  std::atomic<Fault> writes_{Fault::kNone};
  std::atomic<uint64_t> injected_{0};
};

}  // namespace kvcache

#endif  // KVCACHE_OFFLOAD_NVME_FAULT_POINT_H_
