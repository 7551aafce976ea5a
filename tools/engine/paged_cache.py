"""The engine's paged KV cache.

One page holds one block of `block_size` tokens for every layer, laid out
C-contiguously as

    [layers][2 (K, V)][block_size tokens][kv_heads][head_dim]   (dtype of the model)

which is exactly one kvcache block (docs/DESIGN.md, "The reference engine"):
the connector fetches a cached block straight into its page and puts a new
block straight from its page, with no copy and no reshaping.
"""

import torch


class PagedKVCache:
    """A fixed pool of pages, with a free list. Not thread-safe: the engine
    runs one step at a time."""

    def __init__(self, config, num_pages, block_size=16, device=None):
        self.config = config
        self.block_size = block_size
        self.data = torch.zeros(
            num_pages, config.layers, 2, block_size, config.kv_heads, config.head_dim,
            dtype=config.dtype, device=device,
        )
        self._free = list(range(num_pages - 1, -1, -1))

    @property
    def page_bytes(self):
        """Bytes of one page: one kvcache block."""
        return self.data[0].numel() * self.data.element_size()

    def page_ptr(self, page):
        """Address of a page (host memory), for fetch_into / put_from.
        REQUIRES: the cache is in host memory (else use page_bytes_view)."""
        return self.data.data_ptr() + page * self.page_bytes

    def page_bytes_view(self, page):
        """A page as a flat uint8 tensor on the cache's device (no copy)."""
        return self.data[page].view(-1).view(torch.uint8)

    @property
    def on_host(self):
        return self.data.device.type == "cpu"

    def allocate(self, count):
        """`count` free pages (a list of ids); MemoryError if there are not enough."""
        if count > len(self._free):
            raise MemoryError(f"paged cache: {count} pages wanted, {len(self._free)} free")
        return [self._free.pop() for _ in range(count)]

    def free(self, pages):
        self._free.extend(reversed(pages))

    def write(self, layer, block_table, positions, k, v):
        """Stores K/V ([n, kv_heads, head_dim]) of tokens at `positions`."""
        pages = block_table[positions // self.block_size]
        slots = positions % self.block_size
        self.data[pages, layer, 0, slots] = k
        self.data[pages, layer, 1, slots] = v

    def read(self, layer, block_table, context_len):
        """K and V of positions [0, context_len): [context_len, kv_heads, head_dim]
        each, contiguous (one gather per tensor, straight from the pages)."""
        n_pages = -(-context_len // self.block_size)
        pages = block_table[:n_pages]
        c = self.config
        k = self.data[pages, layer, 0].view(-1, c.kv_heads, c.head_dim)[:context_len]
        v = self.data[pages, layer, 1].view(-1, c.kv_heads, c.head_dim)[:context_len]
        return k, v
