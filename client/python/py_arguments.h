// Python arguments of the binding's calls, checked and converted: every
// bad argument raises ValueError or TypeError (pybind11 translates the
// exceptions) before anything is sent to the daemon.
//
// Thread safety: call with the GIL held.
#ifndef KVCACHE_CLIENT_PYTHON_PY_ARGUMENTS_H_
#define KVCACHE_CLIENT_PYTHON_PY_ARGUMENTS_H_

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "client/client.h"
#include "key/block_key.h"

namespace kvcache {

// Keys of 1 to 32 bytes each; ValueError naming the first bad one.
std::vector<BlockKey> KeysFrom(const std::vector<pybind11::bytes>& keys);
// None or b"" is no parent (a root); ValueError for a bad key.
BlockKey ParentFrom(const pybind11::object& parent);
// ValueError unless `other` (of `what`) matches the number of keys.
void CheckSameLength(size_t keys, size_t other, const char* what);

// A Python object's buffer, held (and so kept alive) while the call runs.
struct HeldBuffer {
  pybind11::buffer_info info;
  uint8_t* data() const { return static_cast<uint8_t*>(info.ptr); }
  size_t size() const { return static_cast<size_t>(info.size * info.itemsize); }
};

// C-contiguous, non-empty buffers of `objects` (writable when asked):
// TypeError for no buffer protocol or read-only, ValueError otherwise.
std::vector<HeldBuffer> HoldBuffers(const std::vector<pybind11::object>& objects, bool writable);
// ValueError for a null address or a zero size.
void CheckRawRanges(const std::vector<uintptr_t>& ptrs, const std::vector<uint64_t>& sizes);

// ClientOptions from Client(address, **options); TypeError for an unknown one.
ClientOptions OptionsFrom(const std::string& address, const pybind11::kwargs& kw);

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_PYTHON_PY_ARGUMENTS_H_
