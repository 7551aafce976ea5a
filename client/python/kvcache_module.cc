// _kvcache: the C++ client library as a Python extension (pybind11).
//
// No second implementation of anything: every call goes to the same
// Client / ClusterClient the C++ workers link, so Python gets the same-host
// direct reads, leases, the data port and the fallbacks. The pure-Python
// package `kvcache` (client/python/kvcache) wraps this module and adds torch
// tensor support; use that, not this, from application code.
//
// Rules kept by every binding below:
// - the GIL is released for every call that waits or copies;
// - a miss or a failed call is a result (hits == 0, error set), never an
//   exception; bad arguments raise ValueError or TypeError before anything
//   is sent;
// - buffers are borrowed for the duration of the call only.
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
#include "client/put_buffer.h"
#include "key/block_key.h"
#include "key/key_schema.h"
#include "client/python/py_arguments.h"
#include "client/python/py_data_calls.h"

namespace py = pybind11;

namespace {

// A client's counters as a dict: the plain counters by name, then
// lookup_keys, lookup_hit_keys, lookup_misses and fetch_misses ({reason:
// count}), and paths[path][op] = {requests, blocks, bytes, latency_count,
// latency_sum_us, latency_p50_us, latency_p99_us}.
py::dict CountersDict(const kvcache::ClientCounters& c) {
  using namespace kvcache;
  py::dict d;
  d["lookups"] = c.lookups;
  d["lookup_errors"] = c.lookup_errors;
  d["direct_lookups"] = c.direct_lookups;
  d["fetches"] = c.fetches;
  d["fetch_errors"] = c.fetch_errors;
  d["fetched_bytes"] = c.fetched_bytes;
  d["data_port_fallbacks"] = c.data_port_fallbacks;
  d["local_path_fallbacks"] = c.local_path_fallbacks;
  d["local_path_blocks"] = c.local_path_blocks;
  d["local_direct_reads"] = c.local_direct_reads;
  d["puts_sent"] = c.puts_sent;
  d["puts_dropped"] = c.puts_dropped;
  d["put_errors"] = c.put_errors;
  const ClientFigures& f = c.figures;
  d["lookup_keys"] = f.lookup_keys;
  d["lookup_hit_keys"] = f.lookup_hit_keys;
  py::dict lookup_misses, fetch_misses;
  for (size_t m = 0; m < kClientMisses; ++m) {
    lookup_misses[ClientMissName(static_cast<ClientMiss>(m))] = f.lookup_misses[m];
    fetch_misses[ClientMissName(static_cast<ClientMiss>(m))] = f.fetch_misses[m];
  }
  d["lookup_misses"] = lookup_misses;
  d["fetch_misses"] = fetch_misses;
  py::dict paths;
  for (size_t p = 0; p < kClientPaths; ++p) {
    py::dict ops;
    for (size_t o = 0; o < kClientOps; ++o) {
      const PathFigures& figures = f.paths[p][o];
      py::dict one;
      one["requests"] = figures.requests;
      one["blocks"] = figures.blocks;
      one["bytes"] = figures.bytes;
      one["latency_count"] = figures.latency.count;
      one["latency_sum_us"] = figures.latency.sum_micros;
      one["latency_p50_us"] = figures.latency.QuantileMicros(0.5);
      one["latency_p99_us"] = figures.latency.QuantileMicros(0.99);
      ops[ClientOpName(static_cast<ClientOp>(o))] = one;
    }
    paths[ClientPathName(static_cast<ClientPath>(p))] = ops;
  }
  d["paths"] = paths;
  return d;
}

}  // namespace

PYBIND11_MODULE(_kvcache, m) {
  using namespace kvcache;
  using namespace kvcache::binding;
  m.doc() = "kvcache client library (C++), bound for Python. Use the `kvcache` package.";

  py::enum_<v1::Tier>(m, "Tier")
      .value("UNSPECIFIED", v1::TIER_UNSPECIFIED)
      .value("GPU", v1::TIER_GPU)
      .value("HOST", v1::TIER_HOST)
      .value("NVME", v1::TIER_NVME);
  py::enum_<v1::PutOutcome>(m, "PutOutcome")
      .value("UNSPECIFIED", v1::PUT_OUTCOME_UNSPECIFIED)
      .value("STORED", v1::PUT_STORED)
      .value("ALREADY_CACHED", v1::PUT_ALREADY_CACHED)
      .value("PARENT_MISSING", v1::PUT_PARENT_MISSING)
      .value("NO_SPACE", v1::PUT_NO_SPACE);

  py::class_<KeySchema>(m, "KeySchema",
                        "A versioned key schema: everything that makes two KV blocks "
                        "interchangeable (key/key_schema.h).")
      .def(py::init([](const py::kwargs& kw) {
             KeySchema s;
             py::object self = py::cast(&s, py::return_value_policy::reference);
             for (const auto& [name, value] : kw) {
               if (!py::hasattr(self, name)) {
                 throw py::type_error(
                     absl::StrCat("unknown KeySchema field '", py::cast<std::string>(name), "'"));
               }
               py::setattr(self, name, value);
             }
             return s;
           }))
      .def_readwrite("model_id", &KeySchema::model_id)
      .def_readwrite("weights_revision", &KeySchema::weights_revision)
      .def_readwrite("tokenizer", &KeySchema::tokenizer)
      .def_readwrite("kv_dtype", &KeySchema::kv_dtype)
      .def_readwrite("layout", &KeySchema::layout)
      .def_readwrite("tokens_per_block", &KeySchema::tokens_per_block)
      .def_readwrite("geometry_independent", &KeySchema::geometry_independent)
      .def_readwrite("tp_rank", &KeySchema::tp_rank)
      .def_readwrite("tp_size", &KeySchema::tp_size)
      .def_readwrite("pp_rank", &KeySchema::pp_rank)
      .def_readwrite("pp_size", &KeySchema::pp_size)
      .def_readwrite("lora_id", &KeySchema::lora_id)
      .def_readwrite("lora_version", &KeySchema::lora_version)
      .def_readwrite("extra_keys", &KeySchema::extra_keys)
      .def("validate",
           [](const KeySchema& s) {
             absl::Status st = s.Validate();
             if (!st.ok()) throw py::value_error(std::string(st.message()));
           },
           "Raises ValueError naming the first bad field.")
      .def("serialize",
           [](const KeySchema& s) {
             absl::Status st = s.Validate();
             if (!st.ok()) throw py::value_error(std::string(st.message()));
             return py::bytes(s.Serialize());
           },
           "The canonical bytes hashed into k[-1].")
      .def("schema_key",
           [](const KeySchema& s) {
             absl::Status st = s.Validate();
             if (!st.ok()) throw py::value_error(std::string(st.message()));
             return py::bytes(s.SchemaKey().ToBytes());
           },
           "k[-1] = SHA-256(serialize()).")
      .def_property_readonly(
          "namespace",
          [](const KeySchema& s) {
            absl::Status st = s.Validate();
            if (!st.ok()) throw py::value_error(std::string(st.message()));
            return s.NamespaceName();
          },
          "The namespace string on the wire: '<model_id>@<32 hex digits of k[-1]>'.");

  m.def(
      "chain_keys",
      [](const KeySchema& schema, const std::vector<uint32_t>& tokens) {
        absl::StatusOr<std::vector<BlockKey>> keys;
        {
          py::gil_scoped_release release;
          keys = ChainKeys(schema, tokens);
        }
        std::vector<BlockKey> k = OrRaise(std::move(keys));
        py::list out;
        for (const BlockKey& key : k) out.append(py::bytes(key.ToBytes()));
        return out;
      },
      py::arg("schema"), py::arg("tokens"),
      "chain_keys(schema, tokens) -> list[bytes]: the 32-byte keys of the full blocks of "
      "`tokens` (a trailing partial block has none).");

  py::class_<PyLookup>(m, "LookupResult")
      .def_readonly("hits", &PyLookup::hits, "leading keys cached")
      .def_readonly("sizes", &PyLookup::sizes, "bytes of each hit block")
      .def_readonly("tiers", &PyLookup::tiers, "fastest tier of each hit block")
      .def_readonly("error", &PyLookup::error, "None, or why the call failed (a miss)")
      .def("__repr__", [](const PyLookup& r) {
        return absl::StrCat("LookupResult(hits=", r.hits, ")");
      });
  py::class_<PyFetch>(m, "FetchResult")
      .def_readonly("blocks", &PyFetch::blocks, "leading blocks completely written")
      .def_readonly("tiers", &PyFetch::tiers, "tier each of those came from")
      .def_readonly("error", &PyFetch::error, "None, or the first error")
      .def("__repr__", [](const PyFetch& r) {
        return absl::StrCat("FetchResult(blocks=", r.blocks, ")");
      });
  py::class_<PyPut>(m, "PutResult")
      .def_readonly("outcomes", &PyPut::outcomes, "one PutOutcome per block sent")
      .def_readonly("stored", &PyPut::stored, "blocks newly stored")
      .def_readonly("error", &PyPut::error, "None, or why blocks were not stored")
      .def("__repr__", [](const PyPut& r) {
        return absl::StrCat("PutResult(stored=", r.stored, "/", r.outcomes.size(), ")");
      });

  py::class_<ClientHandle> client(m, "Client", "One kvstored node (client/client.h).");
  client
      .def(py::init([](const std::string& address, const py::kwargs& kw) {
             return ClientHandle(OrRaise(Client::Create(OptionsFrom(address, kw))));
           }),
           py::arg("address") = "127.0.0.1:50051",
           "Client(address='127.0.0.1:50051', **options): options as ClientOptions "
           "(deadline_s, use_local_path, use_direct_reads, use_direct_lookups, use_data_port, "
           "verify_checksums, verify_local_fetches, fetch_streams, split_fetch_bytes, "
           "chunk_bytes, max_inflight_put_bytes), and for a daemon with TLS and tokens "
           "tls_ca, tls_cert, tls_key, tls_server_name (PEM file paths, a name) and token; "
           "act_for_tenant (an admin's token only) acts in that tenant. Does not connect yet.")
      .def(
          "put_async",
          [](const ClientHandle& h, const std::string& ns, const py::object& parent,
             const std::vector<py::bytes>& keys, const std::vector<py::object>& payloads,
             bool evict_first_last) {
            CheckSameLength(keys.size(), payloads.size(), "payloads");
            std::vector<BlockKey> k = KeysFrom(keys);
            const BlockKey p = ParentFrom(parent);
            std::vector<HeldBuffer> held = HoldBuffers(payloads, /*writable=*/false);
            std::vector<PutBlock> blocks(k.size());
            for (size_t i = 0; i < k.size(); ++i) {
              blocks[i].key = k[i];
              blocks[i].payload.assign(reinterpret_cast<const char*>(held[i].data()),
                                       held[i].size());
            }
            if (evict_first_last && !blocks.empty()) blocks.back().evict_first = true;
            std::shared_ptr<Client> c = h.Get();
            py::gil_scoped_release release;
            return c->PutAsync(ns, p, std::move(blocks));
          },
          py::arg("ns"), py::arg("parent"), py::arg("keys"), py::arg("payloads"),
          py::arg("evict_first_last") = false,
          "put_async(...) -> bool: as put, but copies the payloads and returns at once; "
          "False if dropped over max_inflight_put_bytes.")
      .def(
          "flush",
          [](const ClientHandle& h) {
            std::shared_ptr<Client> c = h.Get();
            py::gil_scoped_release release;
            c->Flush();
          },
          "Waits until every put_async so far was sent (or failed).")
      .def(
          "stats",
          [](const ClientHandle& h) { return CountersDict(h.Get()->counters()); },
          "This client's counters (dict): plain counters, lookup_keys, lookup_hit_keys, "
          "lookup_misses and fetch_misses by reason (not_cached, node_down, deadline, error), "
          "and paths[path][op] with requests, blocks, bytes and latency (client_metrics.h).");
  BindDataCalls<ClientHandle>(client);
  py::class_<PutBuffer>(m, "PutBuffer", py::buffer_protocol(),
                        "Writable memory in the same-host daemon's staging space "
                        "(client/put_buffer.h): a put of bytes in it skips the client's copy. "
                        "Supports the buffer protocol (memoryview, numpy.frombuffer, "
                        "torch.frombuffer); held until the object is freed.")
      .def_buffer([](PutBuffer& b) {
        return py::buffer_info(b.data(), 1, py::format_descriptor<uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(b.size())}, {1});
      })
      .def_property_readonly(
          "address", [](const PutBuffer& b) { return reinterpret_cast<uintptr_t>(b.data()); },
          "Its first byte's address, for put_from.")
      .def("__len__", &PutBuffer::size);
  client.def(
      "new_put_buffer",
      [](const ClientHandle& h, size_t bytes) { return OrRaise(h.Get()->NewPutBuffer(bytes)); },
      py::arg("bytes"),
      "new_put_buffer(bytes) -> PutBuffer: memory the same-host daemon reads puts from where "
      "they lie; write blocks into it, then put (or put_from) them from it. ValueError without "
      "a same-host path, or past half of the daemon's --local_staging.");
  client.def(
      "_fetch_loop_seconds",
      [](const ClientHandle& h, const std::string& ns, const std::vector<py::bytes>& keys,
         const std::vector<uintptr_t>& ptrs, const std::vector<uint64_t>& sizes, int iterations) {
        const std::vector<FetchTarget> targets = RawTargets(keys, ptrs, sizes);
        std::shared_ptr<Client> c = h.Get();
        py::gil_scoped_release release;
        const absl::Time start = absl::Now();
        for (int i = 0; i < iterations; ++i) {
          if (c->Fetch(ns, targets).blocks != targets.size()) return -1.0;
        }
        return absl::ToDoubleSeconds(absl::Now() - start);
      },
      "Benchmark support: `iterations` fetch_into calls run back to back in C++ (no Python "
      "between them); seconds taken, or -1 if any fetch missed. tools/engine/bench.py compares "
      "the binding against it.");

  py::class_<ClusterHandle> cluster(m, "ClusterClient",
                                    "Many kvstored nodes as one tier (client/cluster_client.h).");
  cluster.def(
      py::init([](std::vector<std::string> peers, const std::string& etcd,
                  const std::string& etcd_prefix, int root_replicas, int replicas,
                  const py::kwargs& kw) {
        if (replicas < 1) throw py::value_error("replicas must be at least 1");
        ClusterOptions o;
        o.peers = std::move(peers);
        o.etcd = etcd;
        o.etcd_prefix = etcd_prefix;
        o.root_replicas = root_replicas;
        o.replicas = replicas;
        o.node = OptionsFrom("unused:0", kw);
        std::unique_ptr<ClusterClient> c;
        {
          py::gil_scoped_release release;  // reads etcd
          absl::StatusOr<std::unique_ptr<ClusterClient>> made = ClusterClient::Create(o);
          if (!made.ok()) {
            py::gil_scoped_acquire acquire;
            throw py::value_error(std::string(made.status().message()));
          }
          c = *std::move(made);
        }
        return ClusterHandle(std::move(c));
      }),
      py::kw_only(), py::arg("peers") = std::vector<std::string>(), py::arg("etcd") = "",
      py::arg("etcd_prefix") = "/kvcache/nodes/", py::arg("root_replicas") = 0,
      py::arg("replicas") = ClusterOptions().replicas,
      "ClusterClient(*, peers=[...] | etcd='host:port', etcd_prefix, root_replicas, replicas=2, "
      "**node_options): each block on its `replicas` highest-ranked nodes, read from the first "
      "that answers.");
  BindDataCalls<ClusterHandle>(cluster);
  cluster.def(
      "stats", [](const ClusterHandle& h) { return CountersDict(h.Get()->counters()); },
      "The cluster's counters, as Client.stats(): whole chains' keys, hits and misses (node_down "
      "when no replica of a block could be asked), and the node clients' paths summed.");
}
