"""QLLaMA: InternVL's LLaMA decoder, with the cross-attention layers InternVL-G's image path uses.

On the text path it is a plain LLaMA (causal self-attention with RoPE, SwiGLU, RMSNorm); the
`.pth` InternVL-C text tower is exactly this network without cross-attention. On InternVL-G's
image path the learned query tokens attend to each other bidirectionally and, in every
`cross_attention_frequency`-th layer, to the vision tokens. Widths come from the config (the
original hard-codes the vision width 3200 and the query count 96).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zsbench.models.config import TextConfig
from zsbench.models.layers import RMSNorm, apply_rotary, attention, merge_heads, rotary_cos_sin, split_heads


class SelfAttention(nn.Module):
    """LLaMA self-attention: bias-free projections, RoPE on q and k."""

    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        width = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.q_proj = nn.Linear(width, width, bias=False)
        self.k_proj = nn.Linear(width, width, bias=False)
        self.v_proj = nn.Linear(width, width, bias=False)
        self.o_proj = nn.Linear(width, width, bias=False)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        batch, seq, width = x.shape
        heads = (batch, seq, self.num_heads, width // self.num_heads)
        # RoPE acts within each head, so it is applied before the heads move to axis 1: the
        # exported graph then feeds `Attention` in the (batch, seq, width) layout without a
        # transpose per tensor (see zsbench/export/fusions.py). Same values either way.
        q = apply_rotary(self.q_proj(x).view(heads), cos, sin).transpose(1, 2)
        k = apply_rotary(self.k_proj(x).view(heads), cos, sin).transpose(1, 2)
        v = split_heads(self.v_proj(x), self.num_heads)
        return self.o_proj(merge_heads(attention(q, k, v, mask)))


class CrossAttention(nn.Module):
    """Queries (RMSNorm `norm1`) attend to vision tokens (RMSNorm `norm2`); no RoPE, no mask."""

    def __init__(self, config: TextConfig, vision_width: int) -> None:
        super().__init__()
        width = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.norm1 = RMSNorm(width, eps=config.rms_norm_eps)
        self.q_proj = nn.Linear(width, width, bias=False)
        self.norm2 = RMSNorm(vision_width, eps=config.rms_norm_eps)
        self.k_proj = nn.Linear(vision_width, width, bias=False)
        self.v_proj = nn.Linear(vision_width, width, bias=False)
        self.o_proj = nn.Linear(width, width, bias=False)

    def forward(self, queries: torch.Tensor, vision_tokens: torch.Tensor) -> torch.Tensor:
        q = split_heads(self.q_proj(self.norm1(queries)), self.num_heads)
        vision_tokens = self.norm2(vision_tokens)
        k = split_heads(self.k_proj(vision_tokens), self.num_heads)
        v = split_heads(self.v_proj(vision_tokens), self.num_heads)
        return self.o_proj(merge_heads(attention(q, k, v)))


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    """Self-attention, then (in cross-attention layers, when vision tokens are given) cross-attention,
    then the MLP, each with a residual."""

    def __init__(self, config: TextConfig, vision_width: int | None) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.self_attn = SelfAttention(config)
        self.cross_attn = CrossAttention(config, vision_width) if vision_width is not None else None
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.mlp = MLP(config)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        vision_tokens: torch.Tensor | None,
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        if vision_tokens is not None and self.cross_attn is not None:
            x = x + self.cross_attn(x, vision_tokens)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaDecoder(nn.Module):
    """Token embedding, decoder layers and the final RMSNorm (`qllama.model.*` in checkpoints)."""

    def __init__(self, config: TextConfig, cross_attention_frequency: int, vision_width: int | None) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(
            DecoderLayer(config, vision_width if index % cross_attention_frequency == 0 else None)
            for index in range(config.num_hidden_layers)
        )
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(
        self, hidden: torch.Tensor, mask: torch.Tensor | None, vision_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        head_dim = self.config.hidden_size // self.config.num_attention_heads
        # Positions are 0..L-1 whatever the padding, as in the original.
        cos, sin = rotary_cos_sin(hidden.shape[1], head_dim, self.config.rope_theta, hidden.dtype, hidden.device)
        for layer in self.layers:
            hidden = layer(hidden, cos, sin, mask, vision_tokens)
        return self.norm(hidden)


class QLLaMA(nn.Module):
    """Container giving the decoder its checkpoint name, `qllama.model`."""

    def __init__(self, config: TextConfig, cross_attention_frequency: int, vision_width: int | None) -> None:
        super().__init__()
        self.model = LlamaDecoder(config, cross_attention_frequency, vision_width)

    def encode_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Text path: ids (B, L), right-padded with 0 -> hidden state of the last non-pad token (B, D).

        Attention is causal plus a key-padding mask `ids > 0`; the pooled token is at index
        `(ids > 0).sum(1) - 1`, the EOS token.
        """
        keep = input_ids > 0
        length = input_ids.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=input_ids.device).tril()
        mask = causal[None, None, :, :] & keep[:, None, None, :]
        hidden = self.model(self.model.embed_tokens(input_ids), mask)
        last = keep.sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]

    def encode_queries(self, query_tokens: torch.Tensor, vision_tokens: torch.Tensor) -> torch.Tensor:
        """Image path of InternVL-G: queries (B, Q, D) attend to each other bidirectionally and,
        through cross-attention, to the vision tokens -> (B, Q, D)."""
        return self.model(query_tokens, None, vision_tokens)
