"""kvcache: the client library of the kvcache KV-cache tier, for Python.

Every call goes to the C++ client library (the `_kvcache` extension), so a
Python worker gets the same transports as a C++ one: on the daemon's host,
direct reads and lookups through the shared block directory and leases of
arena pages; elsewhere the bulk data port, then gRPC. A miss or a failed
call is a result (``hits == 0``, ``error`` set), never an exception; bad
arguments raise ValueError or TypeError. The GIL is released while a call
waits or copies.

    import kvcache
    schema = kvcache.KeySchema(model_id="m", weights_revision="r", kv_dtype="fp32")
    keys = kvcache.chain_keys(schema, prompt_tokens)
    with kvcache.Client("127.0.0.1:50051") as client:
        hit = client.lookup(schema.namespace, keys)
        got = client.fetch(schema.namespace, keys[:hit.hits], buffers)

Buffers may be anything with the writable buffer protocol (bytearray,
memoryview, numpy arrays) or CPU torch tensors; ``fetch_into`` and
``put_from`` take raw addresses (``tensor.data_ptr()``) with no conversion.
"""

import os as _os

# The pybind11 extension, or (for another Python, or KVCACHE_BACKEND=portable)
# the same C++ client through its C ABI and ctypes: kvcache/_portable.py.
if _os.environ.get("KVCACHE_BACKEND") == "portable":
    from kvcache import _portable as _kvcache
else:
    try:
        import _kvcache
    except ImportError:
        from kvcache import _portable as _kvcache

FetchResult = _kvcache.FetchResult
KeySchema = _kvcache.KeySchema
LookupResult = _kvcache.LookupResult
PutOutcome = _kvcache.PutOutcome
PutResult = _kvcache.PutResult
Tier = _kvcache.Tier
chain_keys = _kvcache.chain_keys
BACKEND = "portable" if _kvcache.__name__.endswith("_portable") else "extension"

__all__ = [
    "BACKEND",
    "Client",
    "ClusterClient",
    "FetchResult",
    "KeySchema",
    "LookupResult",
    "PutOutcome",
    "PutResult",
    "Tier",
    "chain_keys",
]


def _as_buffer(obj):
    """A buffer-protocol view of `obj`; CPU torch tensors become numpy views
    of the same memory (no copy). GPU tensors are refused: fetch them through
    host memory or the C++ GpuTransfer."""
    if hasattr(obj, "data_ptr") and hasattr(obj, "is_cuda"):
        if obj.is_cuda:
            raise TypeError("a CUDA tensor is not a host buffer; fetch into host memory")
        if not obj.is_contiguous():
            raise ValueError("tensor is not contiguous")
        return obj.detach().view(-1).view(dtype=_torch_uint8()).numpy()
    return obj


def _torch_uint8():
    import torch  # only when a tensor was passed

    return torch.uint8


class _Closable:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Client(_kvcache.Client, _Closable):
    """One kvstored node. ``Client(address="127.0.0.1:50051", **options)``.

    Options are ClientOptions' fields: deadline_s, use_local_path,
    use_direct_reads, use_direct_lookups, use_data_port, verify_checksums,
    verify_local_fetches, fetch_streams, split_fetch_bytes, chunk_bytes,
    max_inflight_put_bytes. It connects lazily: a daemon that is down shows
    up as misses.
    """

    def fetch(self, ns, keys, buffers):
        return super().fetch(ns, keys, [_as_buffer(b) for b in buffers])

    def put(self, ns, parent, keys, payloads, evict_first_last=False):
        return super().put(ns, parent, keys, [_as_buffer(p) for p in payloads], evict_first_last)

    def put_async(self, ns, parent, keys, payloads, evict_first_last=False):
        return super().put_async(
            ns, parent, keys, [_as_buffer(p) for p in payloads], evict_first_last
        )


class ClusterClient(_kvcache.ClusterClient, _Closable):
    """Many kvstored nodes as one tier:
    ``ClusterClient(peers=[...])`` or ``ClusterClient(etcd="host:port")``,
    with node options as for Client. Same lookup/fetch/put calls."""

    def fetch(self, ns, keys, buffers):
        return super().fetch(ns, keys, [_as_buffer(b) for b in buffers])

    def put(self, ns, parent, keys, payloads, evict_first_last=False):
        return super().put(ns, parent, keys, [_as_buffer(p) for p in payloads], evict_first_last)
