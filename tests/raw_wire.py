"""Talking to kvstored the way an independent client would: stock grpcio with
raw bytes, protobuf messages encoded by hand (no code or generated protos
from this repo). Shared by the hostile- and slow-client tests."""

import struct

import xxhash  # python3-xxhash

SERVICE = "/kvcache.v1.KvCache/"


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_bytes(number, data):
    return varint(number << 3 | 2) + varint(len(data)) + data


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def field_fixed64(number, value):
    return varint(number << 3 | 1) + struct.pack("<Q", value)


def put_header(ns, key, size, checksum, parent=b""):
    h = field_bytes(1, ns) + field_bytes(2, key) + field_varint(4, size) + field_fixed64(5, checksum)
    if parent:
        h += field_bytes(3, parent)
    return h


def put_block(ns, key, payload, parent=b""):
    header = put_header(ns, key, len(payload), xxhash.xxh3_64_intdigest(payload), parent)
    return field_bytes(1, header) + field_bytes(2, payload)


def lookup_request(ns, keys):
    return field_bytes(1, ns) + b"".join(field_bytes(2, k) for k in keys)


def decode_fields(data):
    """(number, wire_type, value) of each top-level field."""
    i, out = 0, []
    while i < len(data):
        tag, i = read_varint(data, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = read_varint(data, i)
        elif wire == 2:
            n, i = read_varint(data, i)
            value, i = data[i : i + n], i + n
        elif wire == 1:
            value, i = struct.unpack("<Q", data[i : i + 8])[0], i + 8
        elif wire == 5:
            value, i = struct.unpack("<I", data[i : i + 4])[0], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        out.append((number, wire, value))
    return out


def read_varint(data, i):
    shift = result = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def hit_count(response):
    return next((v for n, w, v in decode_fields(response) if n == 1 and w == 0), 0)


# --- raw calls -------------------------------------------------------------

def unary(channel, method, body):
    return channel.unary_unary(SERVICE + method)(body, timeout=10)


def put(channel, messages):
    return channel.stream_unary(SERVICE + "Put")(iter(messages), timeout=30)


def lookup_hits(channel, ns, keys):
    return hit_count(unary(channel, "Lookup", lookup_request(ns, keys)))


def key(i):
    return struct.pack("<Q", i) * 4


def stats(channel):
    """The StatsResponse's top-level varint fields, by number."""
    return {n: v for n, w, v in decode_fields(unary(channel, "Stats", b"")) if w == 0}
