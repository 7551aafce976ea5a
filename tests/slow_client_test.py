"""Slow and stalled clients against a real kvstored, spoken to as an
independent client would (stock grpcio and raw sockets, messages encoded by
hand): what a client that stops sending or stops reading can make the
daemon hold is bounded and given back (issue 27, defect 1 and its class)."""

import socket
import struct
import threading
import time

import grpc
import pytest

from kvcache_testing import Daemon, main
from raw_wire import (SERVICE, decode_fields, field_bytes, field_varint, key, lookup_hits, put, put_block,
                      put_header, stats, unary)

import xxhash  # python3-xxhash

MiB = 1 << 20
STALL_S = 2  # --client_stall_timeout_s of these daemons
PINNED, STAGED, EVICTED = 2, 3, 10  # StatsResponse field numbers


def connect(address):
    """A channel on a TCP connection of its own (grpcio otherwise shares one
    connection among channels to the same address)."""
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


def wait_for(condition, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def store_blocks(channel, ns, first, count, size=4 * MiB):
    """Caches `count` independent root blocks key(first)... of `size` bytes."""
    for i in range(first, first + count):
        response = put(channel, [put_block(ns, key(i), bytes([i % 251]) * size)])
        assert [v for n, w, v in decode_fields(response) if n == 2] == [1], i


class StalledPut:
    """A Put stream that sends `messages`, then nothing until release()."""

    def __init__(self, channel, messages):
        self._release = threading.Event()

        def requests():
            yield from messages
            self._release.wait()

        self.future = channel.stream_unary(SERVICE + "Put").future(requests(), timeout=60)

    def release(self):
        self._release.set()

    def error(self, timeout_s):
        """The status code and details the stream ended with."""
        try:
            self.future.result(timeout=timeout_s)
        except grpc.RpcError as e:
            return e.code(), e.details()
        return grpc.StatusCode.OK, ""


@pytest.fixture()
def daemon():
    # A connection's share is a quarter of the arena (16 MiB), since blocks
    # are at most 4 MiB (the share never falls below one largest block).
    with Daemon(["--host_capacity=64MiB", "--max_block_size=4MiB",
                 f"--client_stall_timeout_s={STALL_S}"]) as d:
        yield d


def test_header_only_put_streams_hold_nothing_and_evict_nothing(daemon):
    with connect(daemon.address) as cache, \
            connect(daemon.address) as other:
        store_blocks(cache, b"cached", 0, 12)  # 48 of 64 MiB
        # 20 streams on one connection and 20 on connections of their own,
        # each announcing a 4 MiB block and sending nothing more.
        own = [connect(daemon.address) for _ in range(20)]
        stalled = [StalledPut(cache, [field_bytes(1, put_header(b"stall", key(100 + i), 4 * MiB, 0))])
                   for i in range(20)]
        stalled += [StalledPut(ch, [field_bytes(1, put_header(b"stall", key(200 + i), 4 * MiB, 0))])
                    for i, ch in enumerate(own)]
        time.sleep(0.5)
        s = stats(other)
        assert s.get(STAGED, 0) == 0
        assert s.get(EVICTED, 0) == 0
        # Another client's put is stored, and every cached block still hits.
        store_blocks(other, b"other", 50, 1)
        assert lookup_hits(other, b"other", [key(50)]) == 1
        assert all(lookup_hits(other, b"cached", [key(i)]) == 1 for i in range(12))
        # The stalled streams are cut off with a clear status, not left open.
        for p in stalled:
            code, details = p.error(timeout_s=STALL_S + 10)
            assert code == grpc.StatusCode.DEADLINE_EXCEEDED, (code, details)
            assert "--client_stall_timeout_s" in details
            p.release()
        for ch in own:
            ch.close()
        assert stats(other).get(EVICTED, 0) == 0


def test_a_put_that_stalls_mid_block_loses_its_staging(daemon):
    with connect(daemon.address) as ch, \
            connect(daemon.address) as watcher:
        payload = b"m" * (4 * MiB)
        header = put_header(b"mid", key(1), len(payload), xxhash.xxh3_64_intdigest(payload))
        p = StalledPut(ch, [field_bytes(1, header) + field_bytes(2, payload[:MiB])])
        wait_for(lambda: stats(watcher).get(STAGED, 0) >= MiB, 5, "the first MiB is staged")
        started = time.monotonic()
        code, details = p.error(timeout_s=STALL_S + 10)
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED, (code, details)
        assert time.monotonic() - started >= STALL_S - 1
        p.release()
        assert stats(watcher).get(STAGED, 0) == 0
        assert lookup_hits(watcher, b"mid", [key(1)]) == 0


def test_one_connection_cannot_stage_more_than_its_share(daemon):
    # The share is a quarter of the 64 MiB arena: 16 MiB. Eight streams on
    # one connection each send 3 MiB of a 4 MiB block and stall.
    with connect(daemon.address) as greedy, \
            connect(daemon.address) as other:
        store_blocks(other, b"cached", 0, 8)  # 32 of 64 MiB
        streams = []
        for i in range(8):
            payload = bytes([i]) * (4 * MiB)
            header = put_header(b"greedy", key(300 + i), len(payload), 0)
            streams.append(StalledPut(greedy, [field_bytes(1, header)] +
                                      [field_bytes(2, payload[j * MiB:(j + 1) * MiB])
                                       for j in range(3)]))
        time.sleep(1)
        staged = stats(other).get(STAGED, 0)
        assert 12 * MiB <= staged <= 16 * MiB, staged
        store_blocks(other, b"other", 60, 2)
        assert all(lookup_hits(other, b"cached", [key(i)]) == 1 for i in range(8))
        assert stats(other).get(EVICTED, 0) == 0
        for p in streams:
            assert p.error(timeout_s=STALL_S + 10)[0] == grpc.StatusCode.DEADLINE_EXCEEDED
            p.release()
        assert stats(other).get(STAGED, 0) == 0


def test_a_fetch_reader_that_stops_reading_loses_its_pins():
    flags = ["--host_capacity=128MiB", "--connection_share=1", f"--client_stall_timeout_s={STALL_S}"]
    with Daemon(flags) as d, connect(d.address) as reader, \
            connect(d.address) as watcher:
        store_blocks(watcher, b"big", 0, 24)  # 96 MiB
        request = field_bytes(1, b"big") + b"".join(
            field_bytes(2, field_bytes(1, key(i))) for i in range(24)) + field_varint(3, MiB)
        chunks = reader.unary_stream(SERVICE + "Fetch")(request, timeout=60)
        next(chunks)  # one chunk, then the reader stops reading
        assert stats(watcher).get(PINNED, 0) > 0
        wait_for(lambda: stats(watcher).get(PINNED, 0) == 0, STALL_S + 10,
                 "the stalled fetch's pins are given back")
        with pytest.raises(grpc.RpcError) as e:
            for _ in chunks:
                pass
        assert e.value.code() == grpc.StatusCode.CANCELLED


def data_port(channel):
    return next(v for n, w, v in decode_fields(unary(channel, "Hello", b"")) if n == 2)


def test_a_data_port_put_that_stalls_mid_block_is_closed_and_loses_its_staging(daemon):
    with connect(daemon.address) as watcher:
        port = data_port(watcher)
        header = put_header(b"dp", key(1), 4 * MiB, 0)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(struct.pack("<II", 0x3150564B, len(header)) + header + b"d" * MiB)
            wait_for(lambda: stats(watcher).get(STAGED, 0) >= MiB // 2, 5, "staged")
            s.settimeout(STALL_S + 10)
            started = time.monotonic()
            assert s.recv(16) == b""  # closed by the daemon
            assert time.monotonic() - started >= STALL_S - 1
        assert stats(watcher).get(STAGED, 0) == 0
        # A header alone stages nothing, on this path too.
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(struct.pack("<II", 0x3150564B, len(header)) + header)
            time.sleep(0.3)
            assert stats(watcher).get(STAGED, 0) == 0


if __name__ == "__main__":
    main(__file__)
