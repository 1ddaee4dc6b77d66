"""Layers shared by InternViT and QLLaMA: RMSNorm, rotary position embedding, attention helpers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """RMSNorm with the statistics in fp32, cast back to the input dtype, then times the weight.

    Both InternViT's `InternRMSNorm` and QLLaMA's `LlamaRMSNorm` compute exactly this (the
    latter casts to the weight dtype, which equals the input dtype in every use).
    """

    def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.eps)
        return self.weight * hidden_states.to(input_dtype)


def rotary_cos_sin(
    seq_len: int | torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables (seq_len, head_dim) for positions 0..seq_len-1, in the HF rotate-half layout.

    Computed in fp32 and cast to `dtype`, as the original's cached tables are. They are built on
    the fly rather than cached in buffers so that a model instantiated on the meta device needs
    no re-initialisation and an exported graph supports any text length.
    """
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    positions = torch.arange(seq_len, device=device, dtype=torch.float32)
    freqs = torch.outer(positions, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Applies RoPE to x (batch, seq, heads, head_dim) with the rotate-half convention; cos and
    sin are (seq, head_dim)."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos[:, None] + rotated * sin[:, None]


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(batch, seq, heads*dim) -> (batch, heads, seq, dim)."""
    batch, seq, width = x.shape
    return x.view(batch, seq, num_heads, width // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(batch, heads, seq, dim) -> (batch, seq, heads*dim)."""
    batch, heads, seq, dim = x.shape
    return x.transpose(1, 2).reshape(batch, seq, heads * dim)


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Scaled dot-product attention (scale head_dim**-0.5) over (batch, heads, seq, dim) tensors.

    `mask` is boolean, True where a query may attend to a key.
    """
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
