#include "client/python/py_arguments.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace kvcache {
namespace py = pybind11;

std::vector<BlockKey> KeysFrom(const std::vector<py::bytes>& keys) {
  std::vector<BlockKey> out;
  out.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    absl::StatusOr<BlockKey> k = BlockKey::FromBytes(std::string(keys[i]));
    if (!k.ok()) {
      throw py::value_error(absl::StrCat("keys[", i, "]: a key is 1 to ", BlockKey::kMaxBytes,
                                         " bytes, got ", std::string(keys[i]).size()));
    }
    out.push_back(*k);
  }
  return out;
}

BlockKey ParentFrom(const py::object& parent) {
  if (parent.is_none()) return BlockKey();
  std::string bytes = py::cast<std::string>(py::bytes(parent));
  if (bytes.empty()) return BlockKey();
  absl::StatusOr<BlockKey> k = BlockKey::FromBytes(bytes);
  if (!k.ok()) {
    throw py::value_error(absl::StrCat("parent: a key is 1 to ", BlockKey::kMaxBytes,
                                       " bytes, got ", bytes.size()));
  }
  return *k;
}

void CheckSameLength(size_t keys, size_t other, const char* what) {
  if (keys != other) {
    throw py::value_error(absl::StrCat("got ", keys, " keys but ", other, " ", what));
  }
}

// Contiguous buffers of `objects`, writable for fetches.
std::vector<HeldBuffer> HoldBuffers(const std::vector<py::object>& objects, bool writable) {
  std::vector<HeldBuffer> held;
  held.reserve(objects.size());
  for (size_t i = 0; i < objects.size(); ++i) {
    if (!PyObject_CheckBuffer(objects[i].ptr())) {
      throw py::type_error(absl::StrCat("buffers[", i, "] does not support the buffer protocol"));
    }
    // buffer_info takes ownership of a heap Py_buffer (released and deleted).
    auto view = std::make_unique<Py_buffer>();
    const int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(objects[i].ptr(), view.get(), flags) != 0) {
      PyErr_Clear();
      if (writable && PyObject_GetBuffer(objects[i].ptr(), view.get(), PyBUF_C_CONTIGUOUS) == 0) {
        PyBuffer_Release(view.get());
        throw py::type_error(absl::StrCat("buffers[", i, "] is read-only"));
      }
      PyErr_Clear();
      throw py::value_error(absl::StrCat("buffers[", i, "] is not C-contiguous"));
    }
    HeldBuffer b{py::buffer_info(view.release(), /*ownview=*/true)};
    if (b.size() == 0) throw py::value_error(absl::StrCat("buffers[", i, "] is empty"));
    held.push_back(std::move(b));
  }
  return held;
}

void CheckRawRanges(const std::vector<uintptr_t>& ptrs, const std::vector<uint64_t>& sizes) {
  for (size_t i = 0; i < ptrs.size(); ++i) {
    if (ptrs[i] == 0) throw py::value_error(absl::StrCat("ptrs[", i, "] is null"));
    if (sizes[i] == 0) throw py::value_error(absl::StrCat("sizes[", i, "] is 0"));
  }
}

ClientOptions OptionsFrom(const std::string& address, const py::kwargs& kw) {
  ClientOptions o;
  o.address = address;
  for (const auto& [name_obj, value] : kw) {
    const std::string name = py::cast<std::string>(name_obj);
    if (name == "deadline_s") {
      o.deadline = absl::Seconds(py::cast<double>(value));
    } else if (name == "max_inflight_put_bytes") {
      o.max_inflight_put_bytes = py::cast<uint64_t>(value);
    } else if (name == "fetch_streams") {
      o.fetch_streams = py::cast<int>(value);
    } else if (name == "split_fetch_bytes") {
      o.split_fetch_bytes = py::cast<uint64_t>(value);
    } else if (name == "chunk_bytes") {
      o.chunk_bytes = py::cast<uint32_t>(value);
    } else if (name == "verify_checksums") {
      o.verify_checksums = py::cast<bool>(value);
    } else if (name == "verify_local_fetches") {
      o.verify_local_fetches = py::cast<bool>(value);
    } else if (name == "use_data_port") {
      o.use_data_port = py::cast<bool>(value);
    } else if (name == "use_local_path") {
      o.use_local_path = py::cast<bool>(value);
    } else if (name == "use_direct_reads") {
      o.use_direct_reads = py::cast<bool>(value);
    } else if (name == "use_direct_lookups") {
      o.use_direct_lookups = py::cast<bool>(value);
    } else if (name == "tls_ca") {
      o.security.tls_ca = py::cast<std::string>(value);
    } else if (name == "tls_cert") {
      o.security.tls_cert = py::cast<std::string>(value);
    } else if (name == "tls_key") {
      o.security.tls_key = py::cast<std::string>(value);
    } else if (name == "tls_server_name") {
      o.security.tls_server_name = py::cast<std::string>(value);
    } else if (name == "token") {
      o.security.token = py::cast<std::string>(value);
    } else if (name == "act_for_tenant") {
      o.security.act_for_tenant = py::cast<std::string>(value);
    } else {
      throw py::type_error(absl::StrCat("unknown client option '", name, "'"));
    }
  }
  return o;
}

}  // namespace kvcache
