"""The `_kvcache` extension's calls over libkvcache_c.so, through ctypes.

For a Python that cannot load `_kvcache` (built for Debian's Python 3.11):
the GPU kit runs the reference engine with a device machine's own Python
and torch this way. Same C++ client underneath (client/c_api/kvcache_c.h),
same rules: a miss or a failed call is a result with ``error`` set, bad
arguments raise ValueError or TypeError before anything is sent, and
ctypes releases the GIL for every call into the library.

Covers Client (lookup, fetch, fetch_into, put, put_from, close), KeySchema
and chain_keys; not ClusterClient, put_async or stats, which raise.

The library is found at $KVCACHE_C_LIB, else beside this package (the kit
puts it there), else by the dynamic loader's search.
"""

import ctypes
import enum
import os

_ERROR_LEN = 1024


class Tier(enum.IntEnum):
    UNSPECIFIED = 0
    GPU = 1
    HOST = 2
    NVME = 3


class PutOutcome(enum.IntEnum):
    UNSPECIFIED = 0
    STORED = 1
    ALREADY_CACHED = 2
    PARENT_MISSING = 3
    NO_SPACE = 4


def _load():
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.environ.get("KVCACHE_C_LIB", ""), os.path.join(here, "libkvcache_c.so"),
                  "libkvcache_c.so"]
    errors = []
    for path in candidates:
        if not path:
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append(f"{path}: {e}")
            continue
        break
    else:
        raise ImportError("libkvcache_c.so not found: " + "; ".join(errors))
    c_size = ctypes.c_size_t
    u8p, u32p, u64p = (ctypes.POINTER(ctypes.c_uint8), ctypes.POINTER(ctypes.c_uint32),
                       ctypes.POINTER(ctypes.c_uint64))
    i32p, voidpp = ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_void_p)
    err = (ctypes.c_char_p, c_size)
    sigs = {
        "kvc_abi_version": (ctypes.c_int, []),
        "kvc_client_create": (ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p, *err]),
        "kvc_client_destroy": (None, [ctypes.c_void_p]),
        "kvc_lookup": (ctypes.c_int64, [ctypes.c_void_p, ctypes.c_char_p, u8p, u32p, c_size,
                                        u64p, i32p, *err]),
        "kvc_fetch_into": (ctypes.c_int64, [ctypes.c_void_p, ctypes.c_char_p, u8p, u32p, c_size,
                                            voidpp, u64p, *err]),
        "kvc_put_from": (ctypes.c_int64, [ctypes.c_void_p, ctypes.c_char_p, u8p, ctypes.c_uint32,
                                          u8p, u32p, c_size, voidpp, u64p, ctypes.c_int, i32p,
                                          *err]),
        "kvc_schema_namespace": (ctypes.c_int64, [ctypes.c_char_p, ctypes.c_char_p, c_size,
                                                  *err]),
        "kvc_chain_keys": (ctypes.c_int64, [ctypes.c_char_p, u32p, c_size, u8p, c_size, *err]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    if lib.kvc_abi_version() != 1:
        raise ImportError(f"libkvcache_c.so has ABI {lib.kvc_abi_version()}, this module wants 1")
    return lib


_lib = _load()


def _error_buffer():
    return ctypes.create_string_buffer(_ERROR_LEN)


def _message(buf):
    text = buf.value.decode("utf-8", "replace")
    return text or None


def _keys(keys, what="keys"):
    """(packed bytes, lengths array) of a list of 1- to 32-byte keys."""
    keys = list(keys)
    for i, k in enumerate(keys):
        name = what if what == "parent" else f"{what}[{i}]"
        if not isinstance(k, (bytes, bytearray)):
            raise TypeError(f"{name} is not bytes")
        if not 1 <= len(k) <= 32:
            raise ValueError(f"{name}: a key is 1 to 32 bytes, got {len(k)}")
    packed = b"".join(bytes(k) for k in keys)
    lens = (ctypes.c_uint32 * max(len(keys), 1))(*[len(k) for k in keys])
    buf = (ctypes.c_uint8 * max(len(packed), 1)).from_buffer_copy(packed or b"\0")
    return buf, lens, len(keys)


def _same_length(keys, other, what):
    if len(keys) != len(other):
        raise ValueError(f"got {len(keys)} keys but {len(other)} {what}")


class LookupResult:
    def __init__(self, hits, sizes, tiers, error):
        self.hits, self.sizes, self.tiers, self.error = hits, sizes, tiers, error

    def __repr__(self):
        return f"LookupResult(hits={self.hits})"


class FetchResult:
    def __init__(self, blocks, error):
        self.blocks, self.tiers, self.error = blocks, [Tier.UNSPECIFIED] * blocks, error

    def __repr__(self):
        return f"FetchResult(blocks={self.blocks})"


class PutResult:
    def __init__(self, outcomes, error):
        self.outcomes = outcomes
        self.stored = sum(1 for o in outcomes if o == PutOutcome.STORED)
        self.error = error

    def __repr__(self):
        return f"PutResult(stored={self.stored}/{len(self.outcomes)})"


_SCHEMA_FIELDS = {
    "model_id": "", "weights_revision": "", "tokenizer": "", "kv_dtype": "bf16",
    "layout": "nhd", "tokens_per_block": 16, "geometry_independent": False, "tp_rank": 0,
    "tp_size": 1, "pp_rank": 0, "pp_size": 1, "lora_id": "", "lora_version": "",
}


class KeySchema:
    """As _kvcache.KeySchema: every field of key/key_schema.h."""

    def __init__(self, **fields):
        for name, default in _SCHEMA_FIELDS.items():
            setattr(self, name, default)
        self.extra_keys = []
        for name, value in fields.items():
            if name not in _SCHEMA_FIELDS and name != "extra_keys":
                raise TypeError(f"unknown KeySchema field '{name}'")
            setattr(self, name, value)

    def _text(self):
        lines = []
        for name in _SCHEMA_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool):
                value = int(value)
            text = str(value)
            if "\n" in text:
                raise ValueError(f"{name} holds a newline")
            lines.append(f"{name}={text}")
        lines += [f"extra_key={k}" for k in self.extra_keys]
        return ("\n".join(lines) + "\n").encode()

    def validate(self):
        self.namespace  # noqa: B018  (raises ValueError when invalid)

    @property
    def namespace(self):
        out, err = ctypes.create_string_buffer(512), _error_buffer()
        if _lib.kvc_schema_namespace(self._text(), out, len(out), err, _ERROR_LEN) < 0:
            raise ValueError(_message(err))
        return out.value.decode()


def chain_keys(schema, tokens):
    """The 32-byte keys of the full blocks of `tokens`."""
    tokens = list(tokens)
    arr = (ctypes.c_uint32 * max(len(tokens), 1))(*tokens)
    room = len(tokens) // max(int(schema.tokens_per_block), 1) + 1
    out, err = (ctypes.c_uint8 * (32 * room))(), _error_buffer()
    n = _lib.kvc_chain_keys(schema._text(), arr, len(tokens), out, room, err, _ERROR_LEN)
    if n < 0:
        raise ValueError(_message(err))
    raw = bytes(out)
    return [raw[32 * i:32 * (i + 1)] for i in range(n)]


def _options_text(options):
    known = {"deadline_s", "use_local_path", "use_direct_reads", "use_direct_lookups",
             "use_data_port", "verify_checksums", "verify_local_fetches", "fetch_streams",
             "split_fetch_bytes", "chunk_bytes", "max_inflight_put_bytes"}
    lines = []
    for name, value in options.items():
        if name not in known:
            raise TypeError(f"unknown client option '{name}'")
        if isinstance(value, bool):
            value = int(value)
        lines.append(f"{name}={value}")
    return "\n".join(lines).encode()


def _buffer_address(obj, writable, name):
    """(address, size, keepalive) of a C-contiguous buffer."""
    try:
        view = memoryview(obj)
    except TypeError:
        raise TypeError(f"{name} does not support the buffer protocol") from None
    if writable and view.readonly:
        raise TypeError(f"{name} is read-only")
    if not view.c_contiguous:
        raise ValueError(f"{name} is not C-contiguous")
    if view.nbytes == 0:
        raise ValueError(f"{name} is empty")
    if isinstance(obj, bytes):
        # The object's own storage, no copy: ctypes passes a bytes object's
        # buffer as a char pointer, and the library only reads it.
        holder = ctypes.c_char_p(obj)
        return ctypes.cast(holder, ctypes.c_void_p).value, view.nbytes, (obj, holder)
    flat = view.cast("B")
    if view.readonly:  # another read-only buffer: ctypes can only copy it
        holder = (ctypes.c_uint8 * view.nbytes).from_buffer_copy(flat)
    else:
        holder = (ctypes.c_uint8 * view.nbytes).from_buffer(flat)
    return ctypes.addressof(holder), view.nbytes, holder


def _check_raw(ptrs, sizes):
    for i, (p, n) in enumerate(zip(ptrs, sizes)):
        if not p:
            raise ValueError(f"ptrs[{i}] is null")
        if not n:
            raise ValueError(f"sizes[{i}] is 0")


class Client:
    """One kvstored node: Client(address='127.0.0.1:50051', **options)."""

    def __init__(self, address="127.0.0.1:50051", **options):
        self._c = None
        err = _error_buffer()
        self._c = _lib.kvc_client_create(address.encode(), _options_text(options), err,
                                         _ERROR_LEN)
        if not self._c:
            raise ValueError(_message(err))

    def _handle(self):
        if not self._c:
            raise ValueError("the client is closed")
        return self._c

    def close(self):
        c, self._c = self._c, None
        if c:
            _lib.kvc_client_destroy(c)

    def __del__(self):
        self.close()

    def lookup(self, ns, keys):
        packed, lens, n = _keys(keys)
        sizes = (ctypes.c_uint64 * max(n, 1))()
        tiers = (ctypes.c_int32 * max(n, 1))()
        err = _error_buffer()
        hits = _lib.kvc_lookup(self._handle(), ns.encode(), packed, lens, n, sizes, tiers, err,
                               _ERROR_LEN)
        if hits < 0:
            raise ValueError(_message(err))
        return LookupResult(hits, list(sizes[:hits]), [Tier(t) for t in tiers[:hits]],
                            _message(err))

    def fetch_into(self, ns, keys, ptrs, sizes):
        keys = list(keys)
        _same_length(keys, ptrs, "pointers")
        _same_length(keys, sizes, "sizes")
        _check_raw(ptrs, sizes)
        packed, lens, n = _keys(keys)
        dests = (ctypes.c_void_p * max(n, 1))(*ptrs)
        sz = (ctypes.c_uint64 * max(n, 1))(*sizes)
        err = _error_buffer()
        got = _lib.kvc_fetch_into(self._handle(), ns.encode(), packed, lens, n, dests, sz, err,
                                  _ERROR_LEN)
        if got < 0:
            raise ValueError(_message(err))
        return FetchResult(got, _message(err))

    def fetch(self, ns, keys, buffers):
        buffers = list(buffers)
        _same_length(list(keys), buffers, "buffers")
        held = [_buffer_address(b, True, f"buffers[{i}]") for i, b in enumerate(buffers)]
        return self.fetch_into(ns, keys, [h[0] for h in held], [h[1] for h in held])

    def put_from(self, ns, parent, keys, ptrs, sizes, evict_first_last=False):
        keys = list(keys)
        _same_length(keys, ptrs, "pointers")
        _same_length(keys, sizes, "sizes")
        _check_raw(ptrs, sizes)
        packed, lens, n = _keys(keys)
        if parent:
            pbuf, plens, _ = _keys([parent], "parent")
            plen = plens[0]
        else:
            pbuf, plen = None, 0
        srcs = (ctypes.c_void_p * max(n, 1))(*ptrs)
        sz = (ctypes.c_uint64 * max(n, 1))(*sizes)
        outcomes = (ctypes.c_int32 * max(n, 1))()
        err = _error_buffer()
        stored = _lib.kvc_put_from(self._handle(), ns.encode(), pbuf, plen, packed, lens, n, srcs,
                                   sz, int(bool(evict_first_last)), outcomes, err, _ERROR_LEN)
        if stored < 0:
            return PutResult([], _message(err))
        return PutResult([PutOutcome(o) for o in outcomes[:n]], _message(err))

    def put(self, ns, parent, keys, payloads, evict_first_last=False):
        payloads = list(payloads)
        _same_length(list(keys), payloads, "payloads")
        held = [_buffer_address(p, False, f"payloads[{i}]") for i, p in enumerate(payloads)]
        return self.put_from(ns, parent, keys, [h[0] for h in held], [h[1] for h in held],
                             evict_first_last)

    def put_async(self, *args, **kwargs):
        raise NotImplementedError("put_async is not in the portable client; use put")

    def stats(self):
        raise NotImplementedError("stats are not in the portable client")


class ClusterClient:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("ClusterClient is not in the portable client")
