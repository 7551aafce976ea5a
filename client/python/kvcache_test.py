"""The Python binding against a real kvstored: key vectors, every path
(same-host, data port, gRPC), buffers of each kind, misses, bad arguments."""

import hashlib
import json
import os
import socket
import subprocess
import threading
import time

import numpy as np
import pytest
import torch

import kvcache
from kvcache_testing import Daemon, main, runfile

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
    fields = dict(model_id="test/model", weights_revision="r1", kv_dtype="fp32")
    fields.update(over)
    return kvcache.KeySchema(**fields)


def payloads(n, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, BLOCK, dtype=np.uint8).tobytes() for _ in range(n)]


def test_key_vectors():
    with open(runfile("key/testdata/key_vectors.json")) as f:
        vectors = json.load(f)["vectors"]
    assert vectors
    for v in vectors:
        s = kvcache.KeySchema(**v["schema"])
        assert s.serialize().hex() == v["serialized_hex"], v["name"]
        assert s.schema_key().hex() == v["schema_key"], v["name"]
        assert s.namespace == v["namespace"], v["name"]
        keys = kvcache.chain_keys(s, v["tokens"])
        assert [k.hex() for k in keys] == v["keys"], v["name"]


def test_chain_keys_skip_a_partial_block():
    s = schema(tokens_per_block=16)
    assert len(kvcache.chain_keys(s, list(range(47)))) == 2
    assert kvcache.chain_keys(s, list(range(32))) == kvcache.chain_keys(s, list(range(47)))[:2]


def test_bad_schema_and_options_raise():
    with pytest.raises(TypeError, match="unknown KeySchema field 'modle_id'"):
        kvcache.KeySchema(modle_id="x")
    with pytest.raises(ValueError):
        kvcache.KeySchema().namespace  # model_id is required
    with pytest.raises(TypeError, match="unknown client option 'dedline_s'"):
        kvcache.Client("127.0.0.1:1", dedline_s=1)
    with pytest.raises(ValueError, match="fetch_streams"):
        kvcache.Client("127.0.0.1:1", fetch_streams=0)


@pytest.mark.parametrize("path", PATHS)
def test_put_lookup_fetch_round_trip(daemon, path):
    s = schema(weights_revision=f"round-trip-{path}")
    ns = s.namespace
    keys = kvcache.chain_keys(s, list(range(16 * 4)))
    data = payloads(4, seed=len(path))
    with kvcache.Client(daemon.address, **PATHS[path]) as c:
        put = c.put(ns, None, keys, data)
        assert put.error is None
        assert put.stored == 4
        assert put.outcomes == [kvcache.PutOutcome.STORED] * 4

        hit = c.lookup(ns, keys + kvcache.chain_keys(s, list(range(16 * 5)))[4:])
        assert hit.error is None
        assert hit.hits == 4
        assert hit.sizes == [BLOCK] * 4
        assert all(t == kvcache.Tier.HOST for t in hit.tiers)

        # One buffer of each kind.
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

        # What the client saw, by path: the lookup's 5 keys (4 hit, then a
        # block never put), the put's and the fetch's blocks and bytes.
        stats = c.stats()
        assert stats["lookup_keys"] == 5 and stats["lookup_hit_keys"] == 4
        assert stats["lookup_misses"] == {"not_cached": 1, "node_down": 0, "deadline": 0,
                                          "error": 0}
        assert sum(stats["fetch_misses"].values()) == 0
        put_figures = stats["paths"][path]["put"]
        assert put_figures["blocks"] == 4 and put_figures["bytes"] == 4 * BLOCK
        assert put_figures["requests"] == put_figures["latency_count"] == 1
        assert put_figures["latency_sum_us"] > 0 and put_figures["latency_p99_us"] > 0
        fetch_figures = stats["paths"][path]["fetch"]
        assert fetch_figures["blocks"] == 4 and fetch_figures["bytes"] == 4 * BLOCK
        for other in PATHS:
            if other != path:
                assert stats["paths"][other]["put"]["requests"] == 0, other
                assert stats["paths"][other]["fetch"]["blocks"] == 0, other


@pytest.mark.parametrize("path", PATHS)
def test_raw_addresses(daemon, path):
    s = schema(weights_revision=f"raw-{path}")
    ns = s.namespace
    keys = kvcache.chain_keys(s, list(range(16 * 3)))
    src = torch.from_numpy(np.frombuffer(b"".join(payloads(3, seed=7)), dtype=np.uint8).copy())
    with kvcache.Client(daemon.address, **PATHS[path]) as c:
        ptrs = [src.data_ptr() + i * BLOCK for i in range(3)]
        put = c.put_from(ns, None, keys, ptrs, [BLOCK] * 3)
        assert put.stored == 3, put.error
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
        got = c.fetch(ns, keys, [bytearray(BLOCK) for _ in keys])
        assert got.blocks == 0
        assert c.put(ns, None, keys[:2], payloads(2, seed=1)).stored == 2
        got = c.fetch(ns, keys, [bytearray(BLOCK) for _ in keys])
        assert got.blocks == 2
        assert got.error is None


def test_other_namespaces_hit_nothing(daemon):
    a = schema(weights_revision="iso")
    keys = kvcache.chain_keys(a, list(range(16)))
    with kvcache.Client(daemon.address) as c:
        assert c.put(a.namespace, None, keys, payloads(1, seed=2)).stored == 1
        for other in (schema(weights_revision="iso2"), schema(weights_revision="iso", tp_rank=1, tp_size=2),
                      schema(weights_revision="iso", kv_dtype="bf16")):
            assert c.lookup(other.namespace, kvcache.chain_keys(other, list(range(16)))).hits == 0
            # Even the same key bytes, asked in another namespace, miss.
            assert c.lookup(other.namespace, keys).hits == 0


def test_direct_lookups_skip_the_round_trip(daemon):
    s = schema(weights_revision="direct")
    ns = s.namespace
    keys = kvcache.chain_keys(s, list(range(16 * 8)))
    with kvcache.Client(daemon.address) as c:
        assert c.put(ns, None, keys, payloads(8, seed=3)).stored == 8
        # The first fetch takes a lease, which tells the client the namespace id.
        assert c.fetch(ns, keys, [bytearray(BLOCK) for _ in keys]).blocks == 8
        before = c.stats()["direct_lookups"]
        hit = c.lookup(ns, keys)
        assert hit.hits == 8
        assert hit.sizes == [BLOCK] * 8
        assert c.stats()["direct_lookups"] == before + 1
        # A chain longer than what is cached: the directory's part plus the daemon's answer.
        longer = kvcache.chain_keys(s, list(range(16 * 9)))
        assert c.lookup(ns, longer).hits == 8
    with kvcache.Client(daemon.address, use_direct_lookups=False) as c:
        c.fetch(ns, keys, [bytearray(BLOCK) for _ in keys])
        assert c.lookup(ns, keys).hits == 8
        assert c.stats()["direct_lookups"] == 0


def test_the_directory_answers_misses_with_or_without_tiers_below(daemon, tmp_path):
    s = schema(weights_revision="direct-miss")
    ns = s.namespace
    keys = kvcache.chain_keys(s, list(range(16 * 4)))
    other = kvcache.chain_keys(schema(weights_revision="direct-miss-2"), list(range(16 * 4)))
    for flags in ([], [f"--nvme_dir={tmp_path}", "--nvme_capacity=64MiB"]):
        with Daemon(["--host_capacity=16MiB", "--page_size=64KiB", *flags]) as d, \
                kvcache.Client(d.address) as c:
            assert c.put(ns, None, keys[:2], payloads(2, seed=5)).stored == 2
            assert c.fetch(ns, keys[:1], [bytearray(BLOCK)]).blocks == 1  # learns the id
            before = c.stats()["direct_lookups"]
            # Two listed, then a key that is not cached; then a chain of misses.
            assert c.lookup(ns, keys).hits == 2
            assert c.lookup(ns, other).hits == 0
            # With only the host tier the directory's "not listed" is the answer;
            # with an NVMe tier below it, its presence table's "nothing of this
            # key is cached in any tier" is (a key on NVMe only is counted there).
            assert c.stats()["direct_lookups"] - before == 2


def test_cluster_client_keeps_two_copies_and_survives_a_node_dying():
    s = schema(weights_revision="cluster")
    keys = kvcache.chain_keys(s, list(range(16 * 12)))
    data = payloads(12, seed=9)
    flags = ["--host_capacity=16MiB", "--page_size=64KiB"]
    with Daemon(flags) as a, Daemon(flags) as b, Daemon(flags) as c:
        with pytest.raises(ValueError):
            kvcache.ClusterClient(peers=[a.address], replicas=0)
        with kvcache.ClusterClient(peers=[a.address, b.address, c.address],
                                   use_local_path=False) as cluster:
            assert cluster.put(s.namespace, None, keys, data).stored == 12
            b.kill()  # without a word: the next calls fail over to the other copy
            assert cluster.lookup(s.namespace, keys).hits == 12
            out = [bytearray(BLOCK) for _ in keys]
            assert cluster.fetch(s.namespace, keys, out).blocks == 12
            assert [bytes(o) for o in out] == data
            stats = cluster.stats()
            assert stats["lookup_keys"] == 12 and stats["lookup_hit_keys"] == 12
            assert sum(stats["lookup_misses"].values()) == 0
            # The node clients' puts, summed: the first block on all three
            # nodes, the other 11 on two each.
            assert stats["paths"]["data_port"]["put"]["blocks"] == 3 + 11 * 2


def test_cluster_client_counts_a_chain_cut_by_a_dead_node_as_node_down():
    s = schema(weights_revision="cluster-one-copy")
    keys = kvcache.chain_keys(s, list(range(16 * 12)))
    flags = ["--host_capacity=16MiB", "--page_size=64KiB"]
    with Daemon(flags) as a, Daemon(flags) as b:
        with kvcache.ClusterClient(peers=[a.address, b.address], replicas=1,
                                   use_local_path=False, deadline_s=2.0) as cluster:
            assert cluster.put(s.namespace, None, keys, payloads(12, seed=3)).stored == 12
            b.kill()  # one copy of each block: b's are gone with it
            hit = cluster.lookup(s.namespace, keys)
            assert hit.hits < 12
            assert cluster.lookup(s.namespace, keys[:1]).hits == 1  # the first block is on both
            stats = cluster.stats()
            assert stats["lookup_misses"]["node_down"] == 1, stats["lookup_misses"]
            assert stats["lookup_misses"]["not_cached"] == 0


def test_put_async_and_flush(daemon):
    s = schema(weights_revision="async")
    keys = kvcache.chain_keys(s, list(range(16 * 2)))
    data = payloads(2, seed=4)
    with kvcache.Client(daemon.address) as c:
        assert c.put_async(s.namespace, None, keys, [bytearray(d) for d in data])
        c.flush()
        assert c.stats()["puts_sent"] == 2
        out = [bytearray(BLOCK), bytearray(BLOCK)]
        assert c.fetch(s.namespace, keys, out).blocks == 2
        assert [bytes(b) for b in out] == data


def test_put_buffers_are_put_from_where_they_lie(daemon):
    s = schema(weights_revision="put-buffer")
    keys = kvcache.chain_keys(s, list(range(16 * 2)))
    data = payloads(2, seed=5)
    with kvcache.Client(daemon.address) as c:
        buffer = c.new_put_buffer(2 * BLOCK)
        assert len(buffer) == 2 * BLOCK
        view = np.frombuffer(buffer, dtype=np.uint8)  # writable, no copy
        view[:BLOCK] = np.frombuffer(data[0], dtype=np.uint8)
        view[BLOCK:] = np.frombuffer(data[1], dtype=np.uint8)
        put = c.put_from(s.namespace, None, keys, [buffer.address, buffer.address + BLOCK],
                         [BLOCK, BLOCK])
        assert put.stored == 2
        view[:] = 0  # the daemon holds its own copy
        out = [bytearray(BLOCK), bytearray(BLOCK)]
        assert c.fetch(s.namespace, keys, out).blocks == 2
        assert [bytes(b) for b in out] == data
        with pytest.raises(ValueError, match="half"):
            c.new_put_buffer(1 << 40)
    with kvcache.Client(daemon.address, use_local_path=False) as remote:
        with pytest.raises(ValueError, match="same-host"):
            remote.new_put_buffer(BLOCK)


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
        # Nothing was stored by any of them.
        assert c.lookup(ns, keys).hits == 0


def test_closed_client_raises(daemon):
    c = kvcache.Client(daemon.address)
    c.close()
    c.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        c.lookup("ns", [b"k"])


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def test_tls_and_tokens_scope_every_path_to_the_tokens_tenant(tmp_path):
    d = str(tmp_path)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca", cwd=d)
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext", cwd=d)
    digest = lambda t: hashlib.sha256(t.encode()).hexdigest()
    (tmp_path / "tokens").write_text(f"{digest('a-secret')} team-a write\n"
                                     f"{digest('b-secret')} team-b write\n"
                                     f"{digest('ops-secret')} ops admin\n")
    flags = [f"--tls_cert={d}/server.pem", f"--tls_key={d}/server.key", f"--token_file={d}/tokens",
             "--host_capacity=64MiB", "--page_size=64KiB"]
    s = schema(weights_revision="tls")
    keys = kvcache.chain_keys(s, list(range(16 * 2)))
    data = payloads(2, seed=7)
    with Daemon(flags) as daemon:
        tls = dict(tls_ca=f"{d}/ca.pem", use_local_path=False)
        with kvcache.Client(daemon.address, token="a-secret", **tls) as a:
            assert a.put(s.namespace, None, keys, data).stored == 2
            buffers = [bytearray(BLOCK), bytearray(BLOCK)]
            got = a.fetch(s.namespace, keys, buffers)
            assert got.blocks == 2 and [bytes(b) for b in buffers] == data
            assert a.stats()["paths"]["data_port"]["fetch"]["requests"] == 1
        with kvcache.Client(daemon.address, token="b-secret", **tls) as b:
            assert b.lookup(s.namespace, keys).hits == 0
            assert b.fetch(s.namespace, keys, [bytearray(BLOCK)] * 2).blocks == 0
        # An admin acts for team-a and sees its blocks; team-b may not.
        with kvcache.Client(daemon.address, token="ops-secret", act_for_tenant="team-a",
                            **tls) as ops:
            assert ops.lookup(s.namespace, keys).hits == 2
        with kvcache.Client(daemon.address, token="b-secret", act_for_tenant="team-a",
                            **tls) as b_for_a:
            refused = b_for_a.lookup(s.namespace, keys)
            assert refused.hits == 0 and "needs admin" in refused.error
        with kvcache.Client(daemon.address, **tls) as anonymous:
            hit = anonymous.lookup(s.namespace, keys)
            assert hit.hits == 0 and "no credentials" in hit.error
        with kvcache.Client(daemon.address, token="a-secret", use_local_path=False) as plain:
            assert plain.lookup(s.namespace, keys).error is not None  # no TLS: no handshake
    with pytest.raises(ValueError, match="in the clear"):
        kvcache.Client("10.0.0.1:50051", token="a-secret")


def test_daemon_down_is_a_miss_within_the_deadline():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with kvcache.Client(f"127.0.0.1:{port}", deadline_s=1.0) as c:
        start = time.monotonic()
        hit = c.lookup("ns", [b"k" * 32])
        got = c.fetch("ns", [b"k" * 32], [bytearray(16)])
        assert time.monotonic() - start < 3
        assert hit.hits == 0 and hit.error is not None
        assert got.blocks == 0 and got.error is not None
        stats = c.stats()
        assert stats["lookup_errors"] == 1
        assert stats["lookup_misses"]["node_down"] == 1
        assert stats["fetch_misses"]["node_down"] == 1


def test_the_gil_is_released_while_a_call_waits():
    # A peer that accepts TCP but never speaks HTTP/2: the lookup waits out
    # its whole deadline, and Python threads must keep running meanwhile.
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
            assert spins > 100  # the main thread ran during the wait


if __name__ == "__main__":
    main(__file__)
