"""A hostile client against a real kvstored: stock grpcio with raw bytes (no
code or generated protos from this repo; messages are encoded by hand), as
the independent client of issue 27 did. Each case is one of its defects."""

import random
import socket
import struct

import grpc
import pytest

from kvcache_testing import Daemon, main
from raw_wire import (SERVICE, decode_fields, field_bytes, field_varint, key, lookup_hits,
                      lookup_request, put, put_block, read_varint, stats, unary)

# --- the daemon ------------------------------------------------------------

@pytest.fixture(scope="module")
def daemon():
    with Daemon(["--host_capacity=32MiB", "--page_size=4KiB"]) as d:
        yield d


@pytest.fixture()
def channel(daemon):
    with grpc.insecure_channel(daemon.address) as ch:
        yield ch


def test_a_put_message_that_does_not_parse_is_invalid_argument_and_stops_the_stream(channel):
    ns = b"garbage-put"
    with pytest.raises(grpc.RpcError) as e:
        put(channel, [b"\xff\xff\xff\xff"])
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed PutRequest" in e.value.details()
    # [valid A, garbage, valid B]: A stored, then the error; B never.
    with pytest.raises(grpc.RpcError) as e:
        put(channel, [put_block(ns, key(1), b"a" * 100), b"\xff\xff\xff\xff",
                      put_block(ns, key(2), b"b" * 100)])
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "message 2" in e.value.details()
    assert lookup_hits(channel, ns, [key(1)]) == 1
    assert lookup_hits(channel, ns, [key(2)]) == 0


def test_a_put_header_whose_namespace_is_not_utf8_is_invalid_argument(channel):
    with pytest.raises(grpc.RpcError) as e:
        put(channel, [put_block(b"bad-\xff-ns", key(3), b"c" * 10)])
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("method", ["Hello", "Lookup", "Evict", "List", "Inspect", "Stats"])
def test_malformed_unary_requests_are_invalid_argument_not_unimplemented(channel, method):
    for body in (b"\xff\xff\xff\xff", field_bytes(1, b"\xc3\x28")):  # garbage; a non-UTF-8 string
        if method in ("Hello", "Stats") and body != b"\xff\xff\xff\xff":
            continue  # their requests have no string fields to be wrong
        with pytest.raises(grpc.RpcError) as e:
            unary(channel, method, body)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, body)
        assert "malformed" in e.value.details()


def test_well_formed_raw_requests_still_work(channel):
    assert decode_fields(unary(channel, "Hello", b""))  # version, limits, ...
    ns = b"raw-ok"
    response = put(channel, [put_block(ns, key(10), b"x" * 5000),
                             put_block(ns, key(11), b"y" * 5000, parent=key(10))])
    assert [v for n, w, v in decode_fields(response) if n == 2] == [2]  # stored
    assert lookup_hits(channel, ns, [key(10), key(11), key(12)]) == 2


def test_rejected_puts_into_new_namespaces_use_up_no_namespace(channel):
    # 70,000 one-byte blocks, each in a new namespace with a parent that is
    # not cached: each is PARENT_MISSING and must not take a namespace slot
    # (the table holds 65,536).
    def messages():
        for i in range(70_000):
            yield put_block(b"ns-%d" % i, key(1), b"z", parent=key(2))

    response = put(channel, messages())
    outcomes = [v for n, w, v in decode_fields(response) if n == 1]
    if outcomes and isinstance(outcomes[0], bytes):  # packed
        packed, outcomes, i = outcomes[0], [], 0
        while i < len(packed):
            v, i = read_varint(packed, i)
            outcomes.append(v)
    assert len(outcomes) == 70_000
    assert set(outcomes) == {3}  # PUT_PARENT_MISSING
    # New namespaces are still usable.
    response = put(channel, [put_block(b"fresh-after-70000", key(1), b"ok")])
    assert lookup_hits(channel, b"fresh-after-70000", [key(1)]) == 1


def test_list_over_a_namespace_with_nul_ends(daemon, channel):
    ns = b"a\x00b"
    put(channel, [put_block(ns, key(100 + i), b"r%d" % i) for i in range(3)])
    rows, token, pages = 0, b"", 0
    while True:
        request = field_bytes(1, ns) + field_varint(2, 1) + (field_bytes(3, token) if token else b"")
        response = decode_fields(unary(channel, "List", request))
        rows += sum(1 for n, w, v in response if n == 1)
        token = next((v for n, w, v in response if n == 2), b"")
        pages += 1
        assert pages <= 10, "List does not end"
        if not token:
            break
    assert rows == 3
    assert pages == 3


def test_many_invalid_utf8_requests_add_only_a_few_log_lines():
    with Daemon(["--host_capacity=8MiB", "--page_size=4KiB"]) as d:
        with grpc.insecure_channel(d.address) as ch:
            before = d.log().count("libprotobuf")
            for _ in range(10_000):
                with pytest.raises(grpc.RpcError):
                    unary(ch, "Lookup", lookup_request(b"\xc3\x28", [key(1)]))
            lines = d.log().count("libprotobuf") - before
    assert lines <= 3


# Random bytes to every method and to the data port, as the independent client
# sent them (seeded, so a failure replays): each answer is a clear code, the
# daemon keeps serving, and nothing stays pinned or staged.
ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
           grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.RESOURCE_EXHAUSTED}


def random_message(rng):
    return bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 3, 8, 40, 300])))


def test_random_bytes_to_every_method_get_clear_codes_and_leave_nothing_held(daemon, channel):
    rng = random.Random(27)
    for method in ["Hello", "Lookup", "Evict", "List", "Inspect", "Stats", "Fetch"]:
        for _ in range(150):
            body = random_message(rng)
            try:
                if method == "Fetch":
                    for _ in channel.unary_stream(SERVICE + method)(body, timeout=10):
                        pass
                else:
                    unary(channel, method, body)
            except grpc.RpcError as e:
                assert e.code() in ALLOWED, (method, body, e.code(), e.details())
    for _ in range(150):
        try:
            put(channel, [random_message(rng) for _ in range(rng.randint(1, 4))])
        except grpc.RpcError as e:
            assert e.code() in ALLOWED | {grpc.StatusCode.DATA_LOSS}, (e.code(), e.details())
    port = next(v for n, w, v in decode_fields(unary(channel, "Hello", b"")) if n == 2)
    for i in range(200):
        # Half the frames start with a real magic, so the framing is exercised.
        magic = [0x3144564B, 0x3150564B, rng.getrandbits(32)][i % 3]
        frame = struct.pack("<II", magic, rng.choice([0, 5, 64, 5000, 1 << 30])) + random_message(rng)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.settimeout(5)
            try:
                s.sendall(frame)
                s.shutdown(socket.SHUT_WR)
                while s.recv(65536):  # the daemon answers or closes; never hangs
                    pass
            except OSError:
                pass  # closed before we finished (reset, broken pipe, not connected): cut off
    held = stats(channel)
    assert held.get(2, 0) == 0 and held.get(3, 0) == 0  # pinned, staged
    assert lookup_hits(channel, b"raw-ok", [key(10)]) in (0, 1)  # still serving


if __name__ == "__main__":
    main(__file__)
