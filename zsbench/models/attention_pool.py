"""The attention-pooling projector (`clip_projector`, and `clip_projector2` in InternVL-G)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zsbench.models.layers import attention, merge_heads, split_heads


class PoolingAttention(nn.Module):
    """Cross-attention with bias-free q/k/v projections plus separate q/k/v biases, then `proj`."""

    def __init__(self, width: int, num_heads: int, out_dim: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(width, width, bias=False)
        self.k = nn.Linear(width, width, bias=False)
        self.v = nn.Linear(width, width, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(width))
        self.k_bias = nn.Parameter(torch.zeros(width))
        self.v_bias = nn.Parameter(torch.zeros(width))
        self.proj = nn.Linear(width, out_dim)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        q = split_heads(F.linear(query, self.q.weight, self.q_bias), self.num_heads)
        k = split_heads(F.linear(key, self.k.weight, self.k_bias), self.num_heads)
        v = split_heads(F.linear(value, self.v.weight, self.v_bias), self.num_heads)
        return self.proj(merge_heads(attention(q, k, v)))


class AttentionPool(nn.Module):
    """Tokens (B, N, width) -> embedding (B, out_dim).

    The query is the mean over all tokens (CLS included); three separate LayerNorms (eps 1e-5)
    normalise query, keys and values. No residual, no MLP.
    """

    def __init__(self, width: int, num_heads: int, out_dim: int) -> None:
        super().__init__()
        self.norm1_q = nn.LayerNorm(width, eps=1e-5)
        self.norm1_k = nn.LayerNorm(width, eps=1e-5)
        self.norm1_v = nn.LayerNorm(width, eps=1e-5)
        self.cross_attn = PoolingAttention(width, num_heads, out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        query = self.norm1_q(tokens.mean(dim=1, keepdim=True))
        pooled = self.cross_attn(query, self.norm1_k(tokens), self.norm1_v(tokens))
        return pooled.squeeze(1)
