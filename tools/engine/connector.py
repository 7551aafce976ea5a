"""The kvcache connector of the reference engine.

Its hooks follow vLLM V1's KV-connector split, so a vLLM adapter is a thin
shim over this class:

- scheduler side: `get_num_new_matched_tokens` (how many prompt tokens
  kvcache can supply: one lookup), `update_state_after_alloc` (which pages
  they go to), `build_connector_meta` (what the worker must load and save
  this step);
- worker side: `start_load_kv` (fetch the matched blocks straight into
  their pages, before the forward pass) and `save_kv` (put the new full
  blocks straight from their pages, after it).

One kvcache block is one page of the paged cache: every layer's K and V of
16 tokens (paged_cache.py has the layout). The key schema carries the
model, weights revision, dtype, layout, block size and TP rank/size, so a
block is only ever restored into the model and shard that computed it.

With the paged cache on a GPU, blocks go through pinned host memory: a
fetch lands there and one copy (and one scatter) puts every block in its
page; a save gathers the pages into it and puts from there. The cache on
the host takes the blocks straight into its pages, with no copy.

Every failure is a miss: a block that is absent, of the wrong size, or that
does not arrive whole and verified is not counted as loaded, and the
engine computes it instead (its page is overwritten before attention reads
it).
"""

import dataclasses
import time

import torch

import kvcache

# The layout tag of paged_cache.py's page; part of the namespace.
LAYOUT = "kvcache-ref:page[layer][kv][token][kv_head][dim]"


@dataclasses.dataclass
class Request:
    request_id: str
    prompt: list


@dataclasses.dataclass
class LoadSpec:
    """Blocks [0, blocks) of a request's chain go to `pages`; they supply
    `tokens` prompt tokens (the last prompt token is always computed)."""

    keys: list
    blocks: int
    tokens: int
    pages: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Loaded:
    """What a load put into the cache: `blocks` whole verified blocks,
    supplying `tokens` prompt tokens."""

    tokens: int = 0
    blocks: int = 0


@dataclasses.dataclass
class ConnectorMetadata:
    loads: dict  # request_id -> LoadSpec


class KvcacheConnector:
    def __init__(self, client, config, block_size=16, tp_rank=0, tp_size=1,
                 stage_through_host=None):
        """`stage_through_host`: None (through host memory exactly when the
        cache is not in host memory), or forced on or off."""
        self.client = client
        self.stage_through_host = stage_through_host
        self._stage = None  # uint8 host tensor, grown as needed
        self.block_size = block_size
        self.schema = kvcache.KeySchema(
            model_id=config.name,
            weights_revision=config.weights_revision,
            kv_dtype=config.dtype_name,
            layout=LAYOUT,
            tokens_per_block=block_size,
            tp_rank=tp_rank,
            tp_size=tp_size,
        )
        self.namespace = self.schema.namespace
        elem = {"float32": 4, "float64": 8, "bfloat16": 2, "float16": 2}[config.dtype_name]
        self.block_bytes = (
            config.layers * 2 * block_size * config.kv_heads * config.head_dim * elem
        )
        self._pending = {}  # request_id -> LoadSpec, between the scheduler's calls
        self._keys = {}  # request_id -> the prompt's chain keys
        self.timings = {}  # of the last call of each hook, in seconds

    # ----- scheduler side -----

    def get_num_new_matched_tokens(self, request, num_computed_tokens=0):
        """Prompt tokens beyond `num_computed_tokens` that kvcache holds,
        in whole blocks; never the whole prompt (the last token's logits
        must be computed)."""
        start = time.perf_counter()
        keys = kvcache.chain_keys(self.schema, request.prompt)
        self._keys[request.request_id] = keys
        hit = self.client.lookup(self.namespace, keys)
        usable = 0
        for size in hit.sizes[: hit.hits]:
            if size != self.block_bytes:
                break  # not a block of this layout: never load it
            usable += 1
        tokens = min(usable * self.block_size, len(request.prompt) - 1)
        blocks = -(-tokens // self.block_size)
        self.timings["lookup"] = time.perf_counter() - start
        if tokens <= num_computed_tokens:
            return 0
        self._pending[request.request_id] = LoadSpec(keys[:blocks], blocks, tokens)
        return tokens - num_computed_tokens

    def update_state_after_alloc(self, request, pages, num_external_tokens):
        """The request's pages (in order) are allocated; load into them."""
        spec = self._pending.get(request.request_id)
        if spec is None:
            return
        if num_external_tokens == 0:
            del self._pending[request.request_id]
            return
        spec.pages = list(pages[: spec.blocks])

    def build_connector_meta(self):
        meta = ConnectorMetadata(loads=self._pending)
        self._pending = {}
        return meta

    # ----- worker side -----

    def _staged(self, cache):
        if self.stage_through_host is not None:
            return self.stage_through_host
        return not cache.on_host

    def _staging(self, blocks):
        """Host memory for `blocks` blocks (pinned when there is CUDA), as
        [blocks, block_bytes] uint8."""
        need = blocks * self.block_bytes
        if self._stage is None or self._stage.numel() < need:
            self._stage = torch.empty(need, dtype=torch.uint8,
                                      pin_memory=torch.cuda.is_available())
        return self._stage[:need].view(blocks, self.block_bytes)

    @staticmethod
    def _pages_as_bytes(cache):
        return cache.data.view(cache.data.shape[0], -1).view(torch.uint8)

    def start_load_kv(self, meta, cache):
        """Fetches each load's blocks into their pages. Returns request_id ->
        Loaded (zero on a miss or any error)."""
        start = time.perf_counter()
        loaded = {}
        for request_id, spec in meta.loads.items():
            if self._staged(cache):
                stage = self._staging(spec.blocks)
                got = self.client.fetch_into(
                    self.namespace, spec.keys,
                    [stage[i].data_ptr() for i in range(spec.blocks)],
                    [self.block_bytes] * spec.blocks,
                )
                if got.blocks:
                    pages = torch.tensor(spec.pages[: got.blocks], device=cache.data.device)
                    self._pages_as_bytes(cache)[pages] = stage[: got.blocks].to(
                        cache.data.device, non_blocking=True)
                    if cache.data.is_cuda:
                        torch.cuda.synchronize(cache.data.device)
            else:
                got = self.client.fetch_into(
                    self.namespace,
                    spec.keys,
                    [cache.page_ptr(p) for p in spec.pages],
                    [self.block_bytes] * spec.blocks,
                )
            loaded[request_id] = Loaded(min(got.blocks * self.block_size, spec.tokens), got.blocks)
        self.timings["fetch"] = time.perf_counter() - start
        return loaded

    def save_kv(self, request, pages, cache, loaded_blocks):
        """Puts the request's full prompt blocks after the first
        `loaded_blocks` (which came from kvcache), from their pages, after
        the forward pass wrote them. Returns the number stored."""
        start = time.perf_counter()
        keys = self._keys.pop(request.request_id, None)
        if keys is None:
            keys = kvcache.chain_keys(self.schema, request.prompt)
        first = loaded_blocks
        if first >= len(keys):
            self.timings["save"] = time.perf_counter() - start
            return 0
        count = len(keys) - first
        if self._staged(cache):
            stage = self._staging(count)
            idx = torch.tensor(pages[first : len(keys)], device=cache.data.device)
            stage.copy_(self._pages_as_bytes(cache)[idx])  # waits for the device
            ptrs = [stage[i].data_ptr() for i in range(count)]
        else:
            ptrs = [cache.page_ptr(p) for p in pages[first : len(keys)]]
        result = self.client.put_from(
            self.namespace,
            keys[first - 1] if first > 0 else None,
            keys[first:],
            ptrs,
            [self.block_bytes] * count,
        )
        self.timings["save"] = time.perf_counter() - start
        return result.stored
