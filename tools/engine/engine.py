"""The reference inference engine: greedy generation over a paged KV cache,
restoring prompt prefixes from kvcache instead of prefilling them.

    engine = Engine(ModelConfig(), connector=KvcacheConnector(kvcache.Client(addr), config))
    out = engine.generate(prompt_tokens, max_new_tokens=32)
    out.tokens, out.ttft_s, out.restored_tokens, out.timings

One request at a time, as a scheduler step would run it: ask the connector
how much of the prompt kvcache holds, allocate pages, load those blocks,
compute the rest of the prompt (at least its last token), sample the first
token (time to first token ends here), save the new full blocks, decode.
"""

import dataclasses
import itertools
import time

import torch

from connector import Request
from model import LlamaModel, ModelConfig  # noqa: F401  (ModelConfig re-exported)
from paged_cache import PagedKVCache


@dataclasses.dataclass
class Generation:
    tokens: list  # generated token ids, the first one included
    first_logits: torch.Tensor  # logits of the prompt's last position
    ttft_s: float  # request start to first token
    restored_tokens: int  # prompt tokens loaded from kvcache
    computed_tokens: int  # prompt tokens computed by the model
    saved_blocks: int
    # Seconds: lookup, fetch (into the pages), compute (the prompt's rest),
    # save (after the first token), decode.
    timings: dict


class Engine:
    """`device` (e.g. "cuda"): where the model and the paged cache live;
    None is the CPU. A given `model` is moved there."""

    def __init__(self, config, connector=None, num_pages=1024, block_size=16, model=None,
                 device=None):
        self.config = config
        self.block_size = block_size
        self.device = torch.device(device or "cpu")
        self.model = model if model is not None else LlamaModel(config)
        if self.device.type != "cpu":
            self.model.to_device(self.device)
        self.cache = PagedKVCache(config, num_pages, block_size, device=self.device)
        self.connector = connector
        self._ids = itertools.count()

    def generate(self, prompt, max_new_tokens=32):
        if not prompt:
            raise ValueError("empty prompt")
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        start = time.perf_counter()
        request = Request(f"req-{next(self._ids)}", list(prompt))
        n = len(prompt)
        timings = {"lookup": 0.0, "fetch": 0.0, "compute": 0.0, "save": 0.0, "decode": 0.0}

        external = 0
        if self.connector is not None:
            external = self.connector.get_num_new_matched_tokens(request, 0)
            timings["lookup"] = self.connector.timings["lookup"]
        pages = self.cache.allocate(-(-(n + max_new_tokens) // self.block_size))
        try:
            restored, restored_blocks = 0, 0
            if self.connector is not None:
                self.connector.update_state_after_alloc(request, pages, external)
                meta = self.connector.build_connector_meta()
                if meta.loads:
                    loaded = self.connector.start_load_kv(meta, self.cache).get(request.request_id)
                    timings["fetch"] = self.connector.timings["fetch"]
                    if loaded is not None:
                        restored, restored_blocks = loaded.tokens, loaded.blocks
            dev = self.device
            block_table = torch.tensor(pages, dtype=torch.int64, device=dev)

            t = time.perf_counter()
            suffix = torch.tensor(prompt[restored:], dtype=torch.int64, device=dev)
            positions = torch.arange(restored, n, dtype=torch.int64, device=dev)
            logits = self.model(suffix, positions, self.cache, block_table)
            token = int(torch.argmax(logits))  # waits for the device: TTFT is honest
            timings["compute"] = time.perf_counter() - t
            ttft = time.perf_counter() - start

            saved = 0
            if self.connector is not None:
                saved = self.connector.save_kv(request, pages, self.cache, restored_blocks)
                timings["save"] = self.connector.timings["save"]

            t = time.perf_counter()
            tokens = [token]
            for pos in range(n, n + max_new_tokens - 1):
                step = self.model(
                    torch.tensor([token], device=dev), torch.tensor([pos], device=dev),
                    self.cache, block_table,
                )
                token = int(torch.argmax(step))
                tokens.append(token)
            timings["decode"] = time.perf_counter() - t
            return Generation(tokens, logits, ttft, restored, n - restored, saved, timings)
        finally:
            self.cache.free(pages)
