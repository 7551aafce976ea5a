# Type stub of the kvcache package (the _kvcache extension and its wrappers).
from enum import Enum
from typing import Any, Iterable, Optional, Sequence

class Tier(Enum):
    UNSPECIFIED: int
    GPU: int
    HOST: int
    NVME: int

class PutOutcome(Enum):
    UNSPECIFIED: int
    STORED: int
    ALREADY_CACHED: int
    PARENT_MISSING: int
    NO_SPACE: int

class KeySchema:
    model_id: str
    weights_revision: str
    tokenizer: str
    kv_dtype: str
    layout: str
    tokens_per_block: int
    geometry_independent: bool
    tp_rank: int
    tp_size: int
    pp_rank: int
    pp_size: int
    lora_id: str
    lora_version: str
    extra_keys: list[str]
    def __init__(self, **fields: Any) -> None: ...
    def validate(self) -> None: ...
    def serialize(self) -> bytes: ...
    def schema_key(self) -> bytes: ...
    @property
    def namespace(self) -> str: ...

def chain_keys(schema: KeySchema, tokens: Sequence[int]) -> list[bytes]: ...

class LookupResult:
    hits: int
    sizes: list[int]
    tiers: list[Tier]
    error: Optional[str]

class FetchResult:
    blocks: int
    tiers: list[Tier]
    error: Optional[str]

class PutResult:
    outcomes: list[PutOutcome]
    stored: int
    error: Optional[str]

class _DataCalls:
    def lookup(self, ns: str, keys: Sequence[bytes]) -> LookupResult: ...
    def fetch(self, ns: str, keys: Sequence[bytes], buffers: Sequence[Any]) -> FetchResult: ...
    def fetch_into(self, ns: str, keys: Sequence[bytes], ptrs: Sequence[int],
                   sizes: Sequence[int]) -> FetchResult: ...
    def put(self, ns: str, parent: Optional[bytes], keys: Sequence[bytes],
            payloads: Sequence[Any], evict_first_last: bool = ...) -> PutResult: ...
    def put_from(self, ns: str, parent: Optional[bytes], keys: Sequence[bytes],
                 ptrs: Sequence[int], sizes: Sequence[int],
                 evict_first_last: bool = ...) -> PutResult: ...
    def close(self) -> None: ...
    def __enter__(self): ...
    def __exit__(self, *exc: Any) -> bool: ...

class Client(_DataCalls):
    def __init__(self, address: str = ..., **options: Any) -> None: ...
    def put_async(self, ns: str, parent: Optional[bytes], keys: Sequence[bytes],
                  payloads: Sequence[Any], evict_first_last: bool = ...) -> bool: ...
    def flush(self) -> None: ...
    # Plain counters (int), lookup_misses / fetch_misses ({reason: int}) and
    # paths ({path: {op: {requests, blocks, bytes, latency_*}}}).
    def stats(self) -> dict[str, Any]: ...

class ClusterClient(_DataCalls):
    def __init__(self, *, peers: Iterable[str] = ..., etcd: str = ...,
                 etcd_prefix: str = ..., root_replicas: int = ..., replicas: int = ...,
                 **options: Any) -> None: ...
    def stats(self) -> dict[str, Any]: ...
