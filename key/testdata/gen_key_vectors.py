#!/usr/bin/env python3
"""Writes key_vectors.json from a second, independent implementation of the
key schema (key/key_schema.h). key_schema_test.cc checks that the C++
code computes the same keys; a client in any language can check itself
against the same file.

Usage: python3 key/testdata/gen_key_vectors.py > key/testdata/key_vectors.json
"""
import hashlib
import json
import struct

MAGIC = b"kvcache-key-schema"
VERSION = 1


def field(tag, value):
    return struct.pack("<HI", tag, len(value)) + value


def u32(tag, v):
    return field(tag, struct.pack("<I", v))


def serialize(s):
    out = MAGIC + struct.pack("<I", VERSION)
    out += field(1, s["model_id"].encode())
    out += field(2, s.get("weights_revision", "").encode())
    out += field(3, s.get("tokenizer", "").encode())
    out += field(4, s.get("kv_dtype", "bf16").encode())
    out += field(5, s.get("layout", "nhd").encode())
    out += u32(6, s.get("tokens_per_block", 16))
    gi = s.get("geometry_independent", False)
    out += u32(11, 1 if gi else 0)
    if not gi:
        out += u32(7, s.get("tp_rank", 0))
        out += u32(8, s.get("tp_size", 1))
        out += u32(9, s.get("pp_rank", 0))
        out += u32(10, s.get("pp_size", 1))
    out += field(12, s.get("lora_id", "").encode())
    out += field(13, s.get("lora_version", "").encode())
    for e in s.get("extra_keys", []):
        out += field(14, e.encode())
    return out


def chain(schema, tokens):
    n = schema.get("tokens_per_block", 16)
    prev = hashlib.sha256(serialize(schema)).digest()
    root = prev
    keys = []
    for start in range(0, len(tokens) - n + 1, n):
        block = tokens[start:start + n]
        prev = hashlib.sha256(prev + struct.pack("<%dI" % n, *block)).digest()
        keys.append(prev.hex())
    return root, keys


CASES = [
    ("minimal", {"model_id": "m"}, list(range(32))),
    ("llama-tp2", {"model_id": "meta-llama/Llama-3.1-8B", "weights_revision": "0e9e39f",
                   "tokenizer": "llama3", "kv_dtype": "fp8_e4m3", "layout": "vllm-paged",
                   "tokens_per_block": 4, "tp_rank": 1, "tp_size": 2},
     [128000, 882, 374, 264, 1296, 13, 4294967295, 0, 7, 7, 7]),
    ("geometry-independent", {"model_id": "qwen", "tokens_per_block": 2,
                              "geometry_independent": True}, [1, 2, 3, 4]),
    ("lora-and-extras", {"model_id": "m", "tokens_per_block": 3, "lora_id": "sql-adapter",
                         "lora_version": "7", "extra_keys": ["img:ab12", "", "img:cd34"]},
     [5, 6, 7, 8, 9, 10]),
    ("partial-block-only", {"model_id": "m", "tokens_per_block": 16}, [1, 2, 3]),
]


def main():
    vectors = []
    for name, schema, tokens in CASES:
        root, keys = chain(schema, tokens)
        vectors.append({
            "name": name,
            "schema": schema,
            "serialized_hex": serialize(schema).hex(),
            "schema_key": root.hex(),
            "namespace": "%s@%s" % (schema["model_id"], root.hex()[:32]),
            "tokens": tokens,
            "keys": keys,
        })
    print(json.dumps({"schema_version": VERSION, "vectors": vectors}, indent=2))


if __name__ == "__main__":
    main()
