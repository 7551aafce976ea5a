"""The reference engine against a real kvstored and a real torch model:
restoring a prefix generates exactly what full prefill generates, and every
failure on the way is a miss that prefill covers.

KVCACHE_ENGINE_DEVICE=cuda runs the model and the paged cache on the GPU
(the GPU kit does); by default both are on the CPU."""

import os
import random
import signal
import socket
import threading
import time

import pytest
import torch

import kvcache
from connector import KvcacheConnector
from engine import Engine
from kvcache_testing import Daemon, main
from model import LlamaModel, ModelConfig

DEVICE = os.environ.get("KVCACHE_ENGINE_DEVICE") or None
SMALL = ModelConfig(vocab_size=512, hidden=128, layers=2, heads=4, kv_heads=2, intermediate=256)
PATHS = {"same_host": {}, "data_port": {"use_local_path": False}}


@pytest.fixture(scope="module")
def daemon():
    with Daemon(["--host_capacity=128MiB", "--page_size=16KiB"]) as d:
        yield d


@pytest.fixture(scope="module")
def model():
    return LlamaModel(SMALL)


def prompt(length, seed):
    rng = random.Random(seed)
    return [rng.randrange(SMALL.vocab_size) for _ in range(length)]


def reference(model, tokens, new=32):
    """Full prefill, no kvcache at all."""
    return Engine(SMALL, model=model, num_pages=64, device=DEVICE).generate(tokens, new)


def engine_on(address, model, config=SMALL, tp=(0, 1), stage=None, **options):
    client = kvcache.Client(address, **options)
    connector = KvcacheConnector(client, config, tp_rank=tp[0], tp_size=tp[1],
                                 stage_through_host=stage)
    return Engine(config, connector=connector, model=model, num_pages=64, device=DEVICE)


def assert_same_generation(got, want):
    assert got.tokens == want.tokens
    assert torch.allclose(got.first_logits, want.first_logits, atol=1e-4, rtol=0)


@pytest.mark.parametrize("path", PATHS)
def test_warm_request_restores_the_prefix_and_generates_the_same_tokens(daemon, model, path):
    tokens = prompt(16 * 12, seed={"same_host": 1, "data_port": 2}[path])
    want = reference(model, tokens)
    engine = engine_on(daemon.address, model, **PATHS[path])
    cold = engine.generate(tokens, 32)
    assert cold.restored_tokens == 0
    assert cold.saved_blocks == 12
    assert_same_generation(cold, want)

    warm = engine.generate(tokens, 32)
    # Every block but the last token, which must be computed for its logits.
    assert warm.restored_tokens == 16 * 12 - 1
    assert warm.computed_tokens == 1
    assert len(warm.tokens) == 32
    assert_same_generation(warm, want)


def test_blocks_staged_through_host_memory_restore_the_same(daemon, model):
    # The path a cache on the GPU takes (fetch into host memory, one copy
    # and scatter into the pages; gather, then put), here forced on.
    tokens = prompt(16 * 9 + 5, seed=31)
    want = reference(model, tokens, 16)
    engine = engine_on(daemon.address, model, stage=True)
    cold = engine.generate(tokens, 16)
    assert cold.saved_blocks == 9
    warm = engine.generate(tokens, 16)
    assert warm.restored_tokens == 16 * 9
    assert_same_generation(warm, want)
    # What it stored restores alike through the default path (straight into
    # the pages on the CPU).
    direct = engine_on(daemon.address, model).generate(tokens, 16)
    assert direct.restored_tokens == 16 * 9
    assert_same_generation(direct, want)


def test_a_prefix_shared_up_to_block_k_restores_k_blocks(daemon, model):
    first = prompt(16 * 8 + 5, seed=11)
    engine = engine_on(daemon.address, model)
    engine.generate(first, 4)
    second = first[: 16 * 3] + prompt(16 * 4 + 9, seed=12)
    got = engine.generate(second, 32)
    assert got.restored_tokens == 16 * 3
    assert got.computed_tokens == len(second) - 16 * 3
    assert_same_generation(got, reference(model, second))


def test_a_partial_last_block_is_never_stored_or_restored(daemon, model):
    tokens = prompt(16 * 6 + 4, seed=21)
    engine = engine_on(daemon.address, model)
    assert engine.generate(tokens, 2).saved_blocks == 6
    warm = engine.generate(tokens, 32)
    assert warm.restored_tokens == 16 * 6
    assert warm.computed_tokens == 4
    assert_same_generation(warm, reference(model, tokens))


def test_another_revision_dtype_or_tp_rank_hits_nothing(daemon, model):
    tokens = prompt(16 * 5, seed=31)
    engine_on(daemon.address, model).generate(tokens, 2)
    other_seed = ModelConfig(**{**SMALL.__dict__, "seed": 1})
    other_dtype = ModelConfig(**{**SMALL.__dict__, "dtype": torch.float64})
    cases = [
        (other_seed, (0, 1)),
        (other_dtype, (0, 1)),
        (SMALL, (1, 2)),
    ]
    for config, tp in cases:
        m = model if config is SMALL else LlamaModel(config)
        got = engine_on(daemon.address, m, config=config, tp=tp).generate(tokens, 8)
        assert got.restored_tokens == 0, (config, tp)
        want = Engine(config, model=m, num_pages=64, device=DEVICE).generate(tokens, 8)
        assert got.tokens == want.tokens


def test_a_block_of_the_wrong_size_is_never_loaded(daemon, model):
    tokens = prompt(16 * 6, seed=41)
    engine = engine_on(daemon.address, model)
    engine.generate(tokens[: 16 * 2 + 3], 2)  # stores blocks 0 and 1
    connector = engine.connector
    keys = kvcache.chain_keys(connector.schema, tokens)
    # Block 2, under its real key, but not a block of this layout.
    put = connector.client.put(connector.namespace, keys[1], [keys[2]], [bytes(connector.block_bytes // 2)])
    assert put.stored == 1
    assert connector.client.lookup(connector.namespace, keys).hits == 3
    got = engine.generate(tokens, 32)
    assert got.restored_tokens == 16 * 2
    assert_same_generation(got, reference(model, tokens))


def test_daemon_down_prefills_everything(model):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed: nothing listens there
    tokens = prompt(16 * 4 + 2, seed=51)
    engine = engine_on(f"127.0.0.1:{port}", model, deadline_s=1.0)
    start = time.monotonic()
    got = engine.generate(tokens, 32)
    assert time.monotonic() - start < 10
    assert got.restored_tokens == 0
    assert got.saved_blocks == 0
    assert_same_generation(got, reference(model, tokens))


def test_a_hung_daemon_costs_one_deadline_and_is_a_miss(model):
    tokens = prompt(16 * 4, seed=52)
    with Daemon(["--host_capacity=16MiB", "--page_size=16KiB"]) as d:
        engine = engine_on(d.address, model, deadline_s=1.0)
        engine.generate(tokens, 2)
        os.kill(d.process.pid, signal.SIGSTOP)
        try:
            start = time.monotonic()
            got = engine.generate(tokens + [1, 2, 3], 8)
            elapsed = time.monotonic() - start
        finally:
            os.kill(d.process.pid, signal.SIGCONT)
    # The lookup waits out its deadline; the same-host directory may still
    # answer it, in which case the fetch is what times out.
    assert elapsed < 8
    assert got.tokens == reference(model, tokens + [1, 2, 3], 8).tokens


class KillingConnector(KvcacheConnector):
    """Kills the daemon after the lookup, as the fetch starts."""

    def __init__(self, daemon, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.daemon = daemon

    def start_load_kv(self, meta, cache):
        self.daemon.kill()
        return super().start_load_kv(meta, cache)


@pytest.mark.parametrize("path", PATHS)
def test_daemon_killed_mid_request_answers_the_same(model, path):
    tokens = prompt(16 * 6 + 1, seed=61)
    with Daemon(["--host_capacity=16MiB", "--page_size=16KiB"]) as d:
        engine_on(d.address, model, **PATHS[path]).generate(tokens, 2)
        client = kvcache.Client(d.address, deadline_s=2.0, **PATHS[path])
        engine = Engine(SMALL, connector=KillingConnector(d, client, SMALL), model=model,
                        num_pages=64, device=DEVICE)
        got = engine.generate(tokens, 32)
    if path == "data_port":
        assert got.restored_tokens == 0
    else:
        # The worker's read-only mapping of the arena outlives the daemon,
        # and the directory entries it checks were consistent: either the
        # blocks come whole from it or not at all.
        assert got.restored_tokens in (0, 16 * 6)
    assert_same_generation(got, reference(model, tokens))


class CorruptingProxy:
    """A TCP proxy to `target` that flips one byte of what the server sends,
    `flip_at` bytes into each connection."""

    def __init__(self, target, flip_at):
        self.target, self.flip_at = target, flip_at
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.flipped = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            host, port = self.target.rsplit(":", 1)
            server = socket.create_connection((host, int(port)))
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, src, dst, corrupt):
        seen = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if corrupt and seen <= self.flip_at < seen + len(data):
                    data = bytearray(data)
                    data[self.flip_at - seen] ^= 0x5A
                    self.flipped += 1
                seen += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.listener.close()


def test_bytes_changed_on_the_wire_are_never_loaded(daemon, model):
    tokens = prompt(16 * 10, seed=71)
    engine_on(daemon.address, model).generate(tokens, 2)
    # gRPC only, through a proxy that corrupts one byte well inside the
    # fetched payload: the client's checksum rejects that block.
    proxy = CorruptingProxy(daemon.address, flip_at=4 * SMALL_BLOCK + 4096)
    try:
        engine = engine_on(proxy.address, model, use_local_path=False, use_data_port=False)
        got = engine.generate(tokens, 32)
    finally:
        proxy.close()
    assert proxy.flipped >= 1
    assert got.restored_tokens < 16 * 10 - 1
    assert_same_generation(got, reference(model, tokens))


SMALL_BLOCK = SMALL.layers * 2 * 16 * SMALL.kv_heads * SMALL.head_dim * 4


if __name__ == "__main__":
    main(__file__)
