"""The portable client (kvcache/_portable.py: the C++ client through
libkvcache_c.so and ctypes, for a Python that cannot load `_kvcache`)
against a real kvstored: the same keys as the extension, every path, every
kind of buffer, misses, bad arguments, a daemon that is down."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

from kvcache_testing import Daemon, main, runfile, use_portable_backend

use_portable_backend()

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import kvcache  # noqa: E402

# The extension and libkvcache_c.so each hold the client's generated proto
# code, which protobuf will not register twice in one process: the
# extension's answers come from a child process.
EXTENSION_KEYS = """
import json, sys
import _kvcache
fields, tokens = json.loads(sys.argv[1])
s = _kvcache.KeySchema(**fields)
print(json.dumps([s.namespace, [k.hex() for k in _kvcache.chain_keys(s, tokens)]]))
"""

BLOCK = 64 * 1024
PATHS = {
    "same_host": {},
    "data_port": {"use_local_path": False},
    "grpc": {"use_local_path": False, "use_data_port": False},
}


@pytest.fixture(scope="module")
def daemon():
    with Daemon(["--host_capacity=64MiB", "--page_size=64KiB"]) as d:
        yield d


def schema(**over):
    fields = dict(model_id="test/portable", weights_revision="r1", kv_dtype="fp32")
    fields.update(over)
    return kvcache.KeySchema(**fields)


def payloads(n, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, BLOCK, dtype=np.uint8).tobytes() for _ in range(n)]


def test_the_portable_backend_is_in_use():
    assert kvcache.BACKEND == "portable"
    assert kvcache.Client.__mro__[1].__module__ == "kvcache._portable"


def test_keys_and_namespaces_match_the_extension_and_the_vectors():
    with open(runfile("key/testdata/key_vectors.json")) as f:
        vectors = json.load(f)["vectors"]
    assert vectors
    for v in vectors:
        s = kvcache.KeySchema(**v["schema"])
        assert s.namespace == v["namespace"], v["name"]
        assert [k.hex() for k in kvcache.chain_keys(s, v["tokens"])] == v["keys"], v["name"]
    fields = dict(model_id="m/x", weights_revision="w", kv_dtype="bf16", layout="l",
                  tokens_per_block=4, tp_rank=1, tp_size=2, lora_id="a", extra_keys=["e1", "e2"])
    tokens = list(range(4 * 6 + 3))
    env = dict(os.environ)
    env.pop("KVCACHE_BACKEND", None)
    out = subprocess.run([sys.executable, "-c", EXTENSION_KEYS, json.dumps([fields, tokens])],
                         env=env, check=True, capture_output=True, text=True).stdout
    ns, keys = json.loads(out)
    assert kvcache.KeySchema(**fields).namespace == ns
    assert [k.hex() for k in kvcache.chain_keys(kvcache.KeySchema(**fields), tokens)] == keys


def test_bad_schema_and_options_raise():
    with pytest.raises(TypeError, match="unknown KeySchema field 'modle_id'"):
        kvcache.KeySchema(modle_id="x")
    with pytest.raises(ValueError):
        kvcache.KeySchema().namespace  # model_id is required
    with pytest.raises(TypeError, match="unknown client option 'dedline_s'"):
        kvcache.Client("127.0.0.1:1", dedline_s=1)
    with pytest.raises(ValueError, match="fetch_streams"):
        kvcache.Client("127.0.0.1:1", fetch_streams="many")


@pytest.mark.parametrize("path", PATHS)
def test_put_lookup_fetch_round_trip(daemon, path):
    s = schema(weights_revision=f"round-trip-{path}")
    ns = s.namespace
    keys = kvcache.chain_keys(s, list(range(16 * 4)))
    data = payloads(4, seed=len(path))
    with kvcache.Client(daemon.address, **PATHS[path]) as c:
        put = c.put(ns, None, keys, data)
        assert put.error is None
        assert put.outcomes == [kvcache.PutOutcome.STORED] * 4
        assert put.stored == 4
        assert c.put(ns, None, keys[:1], data[:1]).outcomes == [kvcache.PutOutcome.ALREADY_CACHED]

        hit = c.lookup(ns, keys + kvcache.chain_keys(s, list(range(16 * 5)))[4:])
        assert hit.error is None
        assert hit.hits == 4
        assert hit.sizes == [BLOCK] * 4
        assert all(t == kvcache.Tier.HOST for t in hit.tiers)

        buffers = [
            bytearray(BLOCK),
            np.zeros(BLOCK, dtype=np.uint8),
            torch.zeros(BLOCK // 4, dtype=torch.float32),
            memoryview(bytearray(BLOCK)),
        ]
        got = c.fetch(ns, keys, buffers)
        assert got.error is None
        assert got.blocks == 4
        assert bytes(buffers[0]) == data[0]
        assert buffers[1].tobytes() == data[1]
        assert buffers[2].numpy().tobytes() == data[2]
        assert bytes(buffers[3]) == data[3]


@pytest.mark.parametrize("path", PATHS)
def test_raw_addresses_and_a_parent(daemon, path):
    s = schema(weights_revision=f"raw-{path}")
    ns = s.namespace
    keys = kvcache.chain_keys(s, list(range(16 * 3)))
    src = torch.from_numpy(np.frombuffer(b"".join(payloads(3, seed=7)), dtype=np.uint8).copy())
    with kvcache.Client(daemon.address, **PATHS[path]) as c:
        ptrs = [src.data_ptr() + i * BLOCK for i in range(3)]
        assert c.put_from(ns, None, keys[:1], ptrs[:1], [BLOCK]).stored == 1
        put = c.put_from(ns, keys[0], keys[1:], ptrs[1:], [BLOCK] * 2, evict_first_last=True)
        assert put.stored == 2, put.error
        dst = torch.zeros(3 * BLOCK, dtype=torch.uint8)
        got = c.fetch_into(ns, keys, [dst.data_ptr() + i * BLOCK for i in range(3)], [BLOCK] * 3)
        assert got.blocks == 3, got.error
        assert torch.equal(src, dst)


def test_fetch_stops_at_the_first_miss(daemon):
    s = schema(weights_revision="miss")
    ns = s.namespace
    keys = kvcache.chain_keys(s, list(range(16 * 3)))
    with kvcache.Client(daemon.address) as c:
        assert c.lookup(ns, keys).hits == 0
        assert c.fetch(ns, keys, [bytearray(BLOCK) for _ in keys]).blocks == 0
        assert c.put(ns, None, keys[:2], payloads(2, seed=1)).stored == 2
        got = c.fetch(ns, keys, [bytearray(BLOCK) for _ in keys])
        assert got.blocks == 2
        assert got.error is None


def test_bad_arguments_raise_before_anything_is_sent(daemon):
    s = schema(weights_revision="bad")
    ns = s.namespace
    keys = kvcache.chain_keys(s, list(range(32)))
    with kvcache.Client(daemon.address) as c:
        with pytest.raises(ValueError, match=r"keys\[1\]: a key is 1 to 32 bytes, got 33"):
            c.lookup(ns, [keys[0], b"x" * 33])
        with pytest.raises(ValueError, match="got 0"):
            c.lookup(ns, [b""])
        with pytest.raises(TypeError, match=r"buffers\[0\] is read-only"):
            c.fetch(ns, keys[:1], [bytes(BLOCK)])
        with pytest.raises(ValueError, match="got 2 keys but 1 buffers"):
            c.fetch(ns, keys, [bytearray(BLOCK)])
        with pytest.raises(ValueError, match=r"buffers\[0\] is empty"):
            c.fetch(ns, keys[:1], [bytearray()])
        with pytest.raises(ValueError, match="not C-contiguous"):
            c.fetch(ns, keys[:1], [np.zeros((64, 64), dtype=np.uint8)[:, ::2]])
        with pytest.raises(TypeError, match="buffer protocol"):
            c.fetch(ns, keys[:1], [object()])
        with pytest.raises(ValueError, match=r"ptrs\[0\] is null"):
            c.fetch_into(ns, keys[:1], [0], [BLOCK])
        with pytest.raises(ValueError, match="got 2 keys but 1 sizes"):
            c.put_from(ns, None, keys, [1, 2], [BLOCK])
        with pytest.raises(ValueError, match="parent: a key is 1 to 32 bytes, got 40"):
            c.put(ns, b"p" * 40, keys[:1], [bytes(BLOCK)])
        with pytest.raises(NotImplementedError):
            c.put_async(ns, None, keys[:1], [bytes(BLOCK)])
        assert c.lookup(ns, keys).hits == 0


def test_closed_client_raises(daemon):
    c = kvcache.Client(daemon.address)
    c.close()
    c.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        c.lookup("ns", [b"k"])


def test_daemon_down_is_a_miss_within_the_deadline():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with kvcache.Client(f"127.0.0.1:{port}", deadline_s=1.0) as c:
        start = time.monotonic()
        hit = c.lookup("ns", [b"k" * 32])
        got = c.fetch("ns", [b"k" * 32], [bytearray(16)])
        put = c.put("ns", None, [b"k" * 32], [bytes(16)])
        assert time.monotonic() - start < 4
        assert hit.hits == 0 and hit.error is not None
        assert got.blocks == 0 and got.error is not None
        assert put.stored == 0 and put.error is not None


def test_the_gil_is_released_while_a_call_waits():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        with kvcache.Client(f"127.0.0.1:{port}", deadline_s=1.0) as c:
            done = threading.Event()
            result = {}

            def call():
                result["hit"] = c.lookup("ns", [b"k" * 32])
                done.set()

            t = threading.Thread(target=call)
            t.start()
            spins = 0
            while not done.is_set():
                spins += 1
                time.sleep(0.001)
            t.join()
            assert result["hit"].hits == 0
            assert spins > 100


if __name__ == "__main__":
    main(__file__)
