"""A small Llama-architecture decoder for the reference engine.

RMSNorm, rotary position embeddings, grouped-query attention and a SwiGLU
MLP, with seeded random weights built from a config (nothing is downloaded).
Attention reads and writes a paged KV cache (paged_cache.py): the model
never keeps K/V of its own, so K/V restored from kvcache into the cache's
pages are used exactly as if the model had computed them.
"""

import dataclasses
import math

import torch


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str = "kvcache-ref-llama"
    # Part of the key schema: another seed is another set of weights.
    seed: int = 0
    vocab_size: int = 32000
    hidden: int = 512
    layers: int = 8
    heads: int = 8
    kv_heads: int = 4
    intermediate: int = 1536
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    dtype: torch.dtype = torch.float32

    @property
    def head_dim(self):
        return self.hidden // self.heads

    @property
    def weights_revision(self):
        return f"seed-{self.seed}"

    @property
    def dtype_name(self):
        return str(self.dtype).replace("torch.", "")


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(config, max_positions, device=None):
    """cos and sin of shape [max_positions, head_dim / 2]."""
    half = config.head_dim // 2
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, half, dtype=torch.float64) / half))
    angles = torch.outer(torch.arange(max_positions, dtype=torch.float64), inv_freq)
    return angles.cos().to(config.dtype).to(device), angles.sin().to(config.dtype).to(device)


def apply_rope(x, cos, sin):
    """x: [tokens, heads, head_dim]; cos/sin: [tokens, head_dim / 2]."""
    x1, x2 = x[..., ::2], x[..., 1::2]
    c, s = cos[:, None, :], sin[:, None, :]
    out = torch.empty_like(x)
    out[..., ::2] = x1 * c - x2 * s
    out[..., 1::2] = x1 * s + x2 * c
    return out


# Queries per attention chunk: bounds the score matrix at long contexts.
QUERY_CHUNK = 1024


def attention(q, k, v, q_positions):
    """Causal grouped-query attention of q over the context k/v.

    q: [n, heads, d] at absolute positions q_positions ([n]); k, v:
    [ctx, kv_heads, d] (contiguous) for positions 0..ctx-1. Returns
    [n, heads * d]. One matrix product per KV head: k[:, h] is a strided
    [ctx, d] matrix BLAS reads in place, so the context is never copied.
    """
    n, heads, d = q.shape
    ctx, kv_heads, _ = k.shape
    group = heads // kv_heads
    key_pos = torch.arange(ctx, device=q.device)
    out = torch.empty(n, kv_heads, group, d, dtype=q.dtype, device=q.device)
    scale = 1.0 / math.sqrt(d)
    for start in range(0, n, QUERY_CHUNK):
        stop = min(n, start + QUERY_CHUNK)
        chunk = stop - start
        masked = key_pos[None, :] > q_positions[start:stop, None]  # [chunk, ctx]
        # Rows of a head's group, query-major: [group * chunk, d].
        qc = q[start:stop].view(chunk, kv_heads, group, d)
        for h in range(kv_heads):
            qh = qc[:, h].transpose(0, 1).reshape(group * chunk, d)
            scores = torch.mm(qh, k[:, h].t()).mul_(scale).view(group, chunk, ctx)
            scores.masked_fill_(masked, float("-inf"))
            probs = torch.softmax(scores, dim=-1).view(group * chunk, ctx)
            out[start:stop, h] = torch.mm(probs, v[:, h]).view(group, chunk, d).transpose(0, 1)
    return out.view(n, heads * d)


class DecoderLayer(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        c = config
        self.config = c
        self.attn_norm = RMSNorm(c.hidden, c.norm_eps)
        self.qkv = torch.nn.Linear(c.hidden, (c.heads + 2 * c.kv_heads) * c.head_dim, bias=False)
        self.o = torch.nn.Linear(c.heads * c.head_dim, c.hidden, bias=False)
        self.mlp_norm = RMSNorm(c.hidden, c.norm_eps)
        self.gate_up = torch.nn.Linear(c.hidden, 2 * c.intermediate, bias=False)
        self.down = torch.nn.Linear(c.intermediate, c.hidden, bias=False)

    def forward(self, x, layer, positions, cos, sin, cache, block_table, context_len):
        c = self.config
        h = self.attn_norm(x)
        q, k, v = self.qkv(h).split(
            [c.heads * c.head_dim, c.kv_heads * c.head_dim, c.kv_heads * c.head_dim], dim=-1
        )
        q = apply_rope(q.view(-1, c.heads, c.head_dim), cos, sin)
        k = apply_rope(k.view(-1, c.kv_heads, c.head_dim), cos, sin)
        v = v.view(-1, c.kv_heads, c.head_dim)
        cache.write(layer, block_table, positions, k, v)
        k_ctx, v_ctx = cache.read(layer, block_table, context_len)
        x = x + self.o(attention(q, k_ctx, v_ctx, positions))
        gate, up = self.gate_up(self.mlp_norm(x)).chunk(2, dim=-1)
        return x + self.down(torch.nn.functional.silu(gate) * up)


class LlamaModel(torch.nn.Module):
    """forward(tokens, positions, cache, block_table) computes the given
    tokens (a prompt's suffix, or one decode token), writing their K/V into
    the cache, and returns the logits of the last one."""

    def __init__(self, config, max_positions=16384):
        super().__init__()
        self.config = config
        generator = torch.Generator().manual_seed(config.seed)
        self.embed = torch.nn.Embedding(config.vocab_size, config.hidden)
        self.layers = torch.nn.ModuleList(DecoderLayer(config) for _ in range(config.layers))
        self.norm = RMSNorm(config.hidden, config.norm_eps)
        self.lm_head = torch.nn.Linear(config.hidden, config.vocab_size, bias=False)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("norm.weight"):
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=generator))
                else:
                    fan_in = p.shape[-1]
                    p.copy_(torch.randn(p.shape, generator=generator) / math.sqrt(fan_in))
        self.to(config.dtype)
        self.eval()
        self.cos, self.sin = rope_tables(config, max_positions)

    def to_device(self, device):
        """Moves the weights and the RoPE tables to `device` (e.g. "cuda")."""
        self.to(device)
        self.cos, self.sin = self.cos.to(device), self.sin.to(device)
        return self

    @torch.no_grad()
    def forward(self, tokens, positions, cache, block_table):
        """tokens, positions: int64 [n], positions consecutive and ending at
        the context's last position. Returns logits [vocab] of the last token."""
        context_len = int(positions[-1]) + 1
        x = self.embed(tokens)
        cos, sin = self.cos[positions], self.sin[positions]
        for i, layer in enumerate(self.layers):
            x = layer(x, i, positions, cos, sin, cache, block_table, context_len)
        return self.lm_head(self.norm(x[-1:]))[0]
