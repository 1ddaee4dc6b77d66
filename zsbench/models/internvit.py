"""InternViT: the vision encoder of InternVL (InternViT-6B at full size).

Module names follow the Hugging Face checkpoint (`vision_model.embeddings.*`,
`vision_model.encoder.layers.i.*`), zsbench's native layout; `checkpoints.py` maps the `.pth`
layout onto it. See shared/reference/README.md for the architecture this reproduces.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zsbench.models.config import VisionConfig
from zsbench.models.layers import RMSNorm, attention, merge_heads, split_heads


class VisionEmbeddings(nn.Module):
    """Patch embedding (conv, kernel = stride = patch) + class token + learned absolute positions."""

    def __init__(self, config: VisionConfig, image_size: int) -> None:
        super().__init__()
        width = config.hidden_size
        num_positions = (image_size // config.patch_size) ** 2 + 1
        self.class_embedding = nn.Parameter(torch.zeros(1, 1, width))
        self.patch_embedding = nn.Conv2d(config.num_channels, width, config.patch_size, config.patch_size)
        self.position_embedding = nn.Parameter(torch.zeros(1, num_positions, width))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        class_token = self.class_embedding.expand(patches.shape[0], -1, -1)
        return torch.cat([class_token, patches], dim=1) + self.position_embedding


class VisionAttention(nn.Module):
    """Multi-head self-attention with qk-normalisation over the whole (all-heads) q and k vectors."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        width = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.qkv = nn.Linear(width, 3 * width, bias=config.qkv_bias)
        self.qk_normalization = config.qk_normalization
        if config.qk_normalization:
            self.q_norm = RMSNorm(width, eps=config.layer_norm_eps)
            self.k_norm = RMSNorm(width, eps=config.layer_norm_eps)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Output channels of qkv are [q | k | v]; each is normalised before the head split.
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        if self.qk_normalization:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (split_heads(t, self.num_heads) for t in (q, k, v))
        return self.proj(merge_heads(attention(q, k, v)))


class VisionMLP(nn.Module):
    """fc1 -> exact (erf) GELU -> fc2."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class VisionLayer(nn.Module):
    """Pre-norm block: x + ls1 * attn(norm1(x)), then x + ls2 * mlp(norm2(x)).

    `layerscale_force_fp32` reproduces the `.pth` model's `LayerScale(force_fp32=True)`, which
    multiplies in fp32 and casts back; the Hugging Face model multiplies in the weight dtype.
    """

    def __init__(self, config: VisionConfig, layerscale_force_fp32: bool) -> None:
        super().__init__()
        width = config.hidden_size
        self.norm1 = RMSNorm(width, eps=config.layer_norm_eps)
        self.attn = VisionAttention(config)
        self.ls1 = nn.Parameter(torch.ones(width))
        self.norm2 = RMSNorm(width, eps=config.layer_norm_eps)
        self.mlp = VisionMLP(config)
        self.ls2 = nn.Parameter(torch.ones(width))
        self.layerscale_force_fp32 = layerscale_force_fp32

    def _scale(self, x: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        if self.layerscale_force_fp32:
            return (x.float() * gamma.float()).to(x.dtype)
        return x * gamma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._scale(self.attn(self.norm1(x)), self.ls1)
        return x + self._scale(self.mlp(self.norm2(x)), self.ls2)


class VisionEncoder(nn.Module):
    """The stack of `VisionLayer`s."""

    def __init__(self, config: VisionConfig, layerscale_force_fp32: bool) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            VisionLayer(config, layerscale_force_fp32) for _ in range(config.num_hidden_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class InternViT(nn.Module):
    """Image (B, 3, H, W) -> all tokens (B, 1 + patches, width); no final norm, no pooling."""

    def __init__(self, config: VisionConfig, image_size: int, layerscale_force_fp32: bool = False) -> None:
        super().__init__()
        self.embeddings = VisionEmbeddings(config, image_size)
        self.encoder = VisionEncoder(config, layerscale_force_fp32)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.embeddings(pixel_values))
