// The data calls both bound clients share (lookup, fetch, fetch_into, put,
// put_from, close), their result types, and the handle that lets close()
// race a running call safely; used by kvcache_module.cc only.
//
// Thread safety: call with the GIL held; each call releases it while it
// waits or copies.
#ifndef KVCACHE_CLIENT_PYTHON_PY_DATA_CALLS_H_
#define KVCACHE_CLIENT_PYTHON_PY_DATA_CALLS_H_

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "client/cluster_client.h"
#include "client/python/py_arguments.h"
#include "key/block_key.h"

namespace kvcache {
namespace binding {

namespace py = pybind11;

inline py::object ErrorOf(const absl::Status& status) {
  if (status.ok()) return py::none();
  return py::str(status.ToString());
}

// What Python sees of a lookup.
struct PyLookup {
  size_t hits = 0;
  std::vector<uint64_t> sizes;
  std::vector<v1::Tier> tiers;
  py::object error;
};

struct PyFetch {
  size_t blocks = 0;
  std::vector<v1::Tier> tiers;
  py::object error;
};

struct PyPut {
  std::vector<v1::PutOutcome> outcomes;
  size_t stored = 0;
  py::object error;
};

inline PyLookup ToPy(LookupResult r) {
  return PyLookup{r.hits, std::move(r.sizes), std::move(r.tiers), ErrorOf(r.status)};
}

inline PyFetch ToPy(FetchResult r) {
  return PyFetch{r.blocks, std::move(r.tiers), ErrorOf(r.status)};
}

inline PyPut ToPyPut(absl::StatusOr<std::vector<v1::PutOutcome>> r) {
  PyPut out;
  if (!r.ok()) {
    out.error = ErrorOf(r.status());
    return out;
  }
  out.outcomes = std::move(*r);
  for (v1::PutOutcome o : out.outcomes) out.stored += o == v1::PUT_STORED;
  out.error = py::none();
  return out;
}

inline PyPut ToPyPut(std::vector<v1::PutOutcome> r) {
  PyPut out;
  out.outcomes = std::move(r);
  size_t unreached = 0;
  for (v1::PutOutcome o : out.outcomes) {
    out.stored += o == v1::PUT_STORED;
    unreached += o == v1::PUT_OUTCOME_UNSPECIFIED;
  }
  out.error = py::none();
  if (unreached > 0) out.error = py::str(absl::StrCat(unreached, " blocks' nodes were not reached"));
  return out;
}

// A closable handle: methods copy the shared_ptr under the GIL, so close()
// while another thread's call runs leaves that call its client.
template <typename C>
class Handle {
 public:
  using element = C;
  explicit Handle(std::unique_ptr<C> c) : client_(std::move(c)) {}
  std::shared_ptr<C> Get() const {
    if (client_ == nullptr) throw py::value_error("the client is closed");
    return client_;
  }
  void Close() {
    std::shared_ptr<C> last = std::move(client_);
    py::gil_scoped_release release;  // ~Client flushes queued puts
    last.reset();
  }

 private:
  std::shared_ptr<C> client_;
};

template <typename C>
PyLookup Lookup(const Handle<C>& h, const std::string& ns, const std::vector<py::bytes>& keys) {
  std::vector<BlockKey> k = KeysFrom(keys);
  std::shared_ptr<C> c = h.Get();
  LookupResult r;
  {
    py::gil_scoped_release release;
    r = c->Lookup(ns, k);
  }
  return ToPy(std::move(r));
}

template <typename C>
PyFetch FetchTargets(C& c, const std::string& ns, std::vector<FetchTarget> targets) {
  FetchResult r;
  {
    py::gil_scoped_release release;
    r = c.Fetch(ns, targets);
  }
  return ToPy(std::move(r));
}

template <typename C>
PyFetch Fetch(const Handle<C>& h, const std::string& ns, const std::vector<py::bytes>& keys,
              const std::vector<py::object>& buffers) {
  CheckSameLength(keys.size(), buffers.size(), "buffers");
  std::vector<BlockKey> k = KeysFrom(keys);
  std::vector<HeldBuffer> held = HoldBuffers(buffers, /*writable=*/true);
  std::vector<FetchTarget> targets;
  for (size_t i = 0; i < k.size(); ++i) targets.push_back({k[i], {held[i].data(), held[i].size()}});
  std::shared_ptr<C> c = h.Get();
  return FetchTargets(*c, ns, std::move(targets));
}

// Fetch targets at raw host addresses, checked.
inline std::vector<FetchTarget> RawTargets(const std::vector<py::bytes>& keys,
                                    const std::vector<uintptr_t>& ptrs,
                                    const std::vector<uint64_t>& sizes) {
  CheckSameLength(keys.size(), ptrs.size(), "ptrs");
  CheckSameLength(keys.size(), sizes.size(), "sizes");
  CheckRawRanges(ptrs, sizes);
  std::vector<BlockKey> k = KeysFrom(keys);
  std::vector<FetchTarget> targets;
  for (size_t i = 0; i < k.size(); ++i) {
    targets.push_back({k[i], {reinterpret_cast<uint8_t*>(ptrs[i]), sizes[i]}});
  }
  return targets;
}

template <typename C>
PyFetch FetchInto(const Handle<C>& h, const std::string& ns, const std::vector<py::bytes>& keys,
                  const std::vector<uintptr_t>& ptrs, const std::vector<uint64_t>& sizes) {
  std::vector<FetchTarget> targets = RawTargets(keys, ptrs, sizes);
  std::shared_ptr<C> c = h.Get();
  return FetchTargets(*c, ns, std::move(targets));
}

// Blocks whose bytes stay where the caller has them (borrowed).
inline std::vector<PutBlock> BorrowedBlocks(const std::vector<BlockKey>& keys,
                                     const std::vector<const uint8_t*>& data,
                                     const std::vector<uint64_t>& sizes, bool evict_first_last) {
  std::vector<PutBlock> blocks(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    blocks[i].key = keys[i];
    blocks[i].borrowed = {data[i], sizes[i]};
  }
  if (evict_first_last && !blocks.empty()) blocks.back().evict_first = true;
  return blocks;
}

inline auto DoPut(Client& c, const std::string& ns, const BlockKey& parent,
           const std::vector<PutBlock>& blocks) {
  return c.Put(ns, parent, blocks);
}
inline auto DoPut(ClusterClient& c, const std::string& ns, const BlockKey& parent,
           const std::vector<PutBlock>& blocks) {
  return c.Put(ns, parent, blocks);
}

template <typename C>
PyPut PutBlocks(C& c, const std::string& ns, const BlockKey& parent,
                const std::vector<PutBlock>& blocks) {
  std::optional<decltype(DoPut(c, ns, parent, blocks))> r;
  {
    py::gil_scoped_release release;
    r.emplace(DoPut(c, ns, parent, blocks));
  }
  return ToPyPut(*std::move(r));
}

template <typename C>
PyPut Put(const Handle<C>& h, const std::string& ns, const py::object& parent,
          const std::vector<py::bytes>& keys, const std::vector<py::object>& payloads,
          bool evict_first_last) {
  CheckSameLength(keys.size(), payloads.size(), "payloads");
  std::vector<BlockKey> k = KeysFrom(keys);
  const BlockKey p = ParentFrom(parent);
  std::vector<HeldBuffer> held = HoldBuffers(payloads, /*writable=*/false);
  std::vector<const uint8_t*> data;
  std::vector<uint64_t> sizes;
  for (const HeldBuffer& b : held) {
    data.push_back(b.data());
    sizes.push_back(b.size());
  }
  std::shared_ptr<C> c = h.Get();
  return PutBlocks(*c, ns, p, BorrowedBlocks(k, data, sizes, evict_first_last));
}

template <typename C>
PyPut PutFrom(const Handle<C>& h, const std::string& ns, const py::object& parent,
              const std::vector<py::bytes>& keys, const std::vector<uintptr_t>& ptrs,
              const std::vector<uint64_t>& sizes, bool evict_first_last) {
  CheckSameLength(keys.size(), ptrs.size(), "ptrs");
  CheckSameLength(keys.size(), sizes.size(), "sizes");
  CheckRawRanges(ptrs, sizes);
  std::vector<BlockKey> k = KeysFrom(keys);
  const BlockKey p = ParentFrom(parent);
  std::vector<const uint8_t*> data;
  for (uintptr_t ptr : ptrs) data.push_back(reinterpret_cast<const uint8_t*>(ptr));
  std::shared_ptr<C> c = h.Get();
  return PutBlocks(*c, ns, p, BorrowedBlocks(k, data, sizes, evict_first_last));
}


template <typename T>
T OrRaise(absl::StatusOr<T> v) {
  if (!v.ok()) throw py::value_error(std::string(v.status().message()));
  return *std::move(v);
}

using ClientHandle = Handle<Client>;
using ClusterHandle = Handle<ClusterClient>;

inline constexpr char kLookupDoc[] =
    "lookup(ns, keys) -> LookupResult: how many leading keys of the chain are cached, "
    "with each hit block's size and tier. A failed call is a miss (error says why).";
inline constexpr char kFetchDoc[] =
    "fetch(ns, keys, buffers) -> FetchResult: copies cached blocks into writable, "
    "C-contiguous buffers (bytearray, memoryview, numpy array), in order, stopping at the "
    "first miss. Buffer i receives bytes [0, len(buffer)) of block i; a whole block is "
    "checksum-verified when it came over a socket.";
inline constexpr char kFetchIntoDoc[] =
    "fetch_into(ns, keys, ptrs, sizes) -> FetchResult: as fetch, into raw host addresses "
    "(tensor.data_ptr()); the caller keeps each [ptr, ptr + size) writable during the call.";
inline constexpr char kPutDoc[] =
    "put(ns, parent, keys, payloads, evict_first_last=False) -> PutResult: stores a chain "
    "(keys[0]'s parent is `parent`, None for a root), synchronously, with no copy of the "
    "payloads on the caller's side.";
inline constexpr char kPutFromDoc[] =
    "put_from(ns, parent, keys, ptrs, sizes, evict_first_last=False) -> PutResult: as put, "
    "from raw host addresses, which must stay unchanged until it returns.";

template <typename H, typename PyClass>
void BindDataCalls(PyClass& cls) {
  cls.def("lookup", &Lookup<typename H::element>, py::arg("ns"), py::arg("keys"), kLookupDoc)
      .def("fetch", &Fetch<typename H::element>, py::arg("ns"), py::arg("keys"),
           py::arg("buffers"), kFetchDoc)
      .def("fetch_into", &FetchInto<typename H::element>, py::arg("ns"), py::arg("keys"),
           py::arg("ptrs"), py::arg("sizes"), kFetchIntoDoc)
      .def("put", &Put<typename H::element>, py::arg("ns"), py::arg("parent"), py::arg("keys"),
           py::arg("payloads"), py::arg("evict_first_last") = false, kPutDoc)
      .def("put_from", &PutFrom<typename H::element>, py::arg("ns"), py::arg("parent"),
           py::arg("keys"), py::arg("ptrs"), py::arg("sizes"),
           py::arg("evict_first_last") = false, kPutFromDoc)
      .def("close", &H::Close, "Closes the client (waits for queued puts). Idempotent.");
}


}  // namespace binding
}  // namespace kvcache

#endif  // KVCACHE_CLIENT_PYTHON_PY_DATA_CALLS_H_
