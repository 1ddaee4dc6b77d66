"""InternVL-C and InternVL-G: InternViT + QLLaMA with CLIP-style `encode_image` / `encode_text`."""

from __future__ import annotations

import math

import torch
from torch import nn

from zsbench.errors import ConfigError
from zsbench.models.attention_pool import AttentionPool
from zsbench.models.config import CONTEXT_LENGTH, CheckpointFormat, ImageHead, InternVLConfig
from zsbench.models.internvit import InternViT
from zsbench.models.qllama import QLLaMA



class InternVL(nn.Module):
    """The InternVL model in zsbench's native (Hugging Face) parameter layout.

    Args:
        config: architecture sizes.
        checkpoint_format: ``"hf"`` builds everything the Hugging Face checkpoint holds (query
            tokens, QLLaMA cross-attention, `clip_projector2`); ``"pth"`` builds only InternVL-C,
            as `internvl_c_13b_224px.pth` holds, and multiplies layer scale in fp32 as that model does.
        image_head: ``"c"`` embeds images with `clip_projector` over InternViT's tokens; ``"g"``
            adds QLLaMA's query path: l2norm(clip_projector2(queries)) + l2norm(clip_projector(vision)).
    """

    def __init__(self, config: InternVLConfig, checkpoint_format: CheckpointFormat, image_head: ImageHead) -> None:
        super().__init__()
        has_query_path = checkpoint_format == "hf"
        if image_head == "g" and not has_query_path:
            raise ConfigError("InternVL-G needs the Hugging Face checkpoint format (the .pth file has no QLLaMA queries).")
        self.config = config
        self.checkpoint_format = checkpoint_format
        self.image_head = image_head
        self.context_length = CONTEXT_LENGTH
        vision_width, text_width = config.vision.hidden_size, config.text.hidden_size

        self.vision_model = InternViT(config.vision, config.image_size, layerscale_force_fp32=checkpoint_format == "pth")
        self.qllama = QLLaMA(
            config.text, config.cross_attention_frequency, vision_width if has_query_path else None
        )
        self.text_projection = nn.Parameter(torch.zeros(text_width, config.clip_embed_dim))
        self.logit_scale = nn.Parameter(torch.zeros([]))
        self.clip_projector = AttentionPool(vision_width, config.attn_pool_num_heads, config.clip_embed_dim)
        if has_query_path:
            self.query_tokens = nn.Parameter(torch.zeros(1, config.num_query_token, text_width))
            self.clip_projector2 = AttentionPool(text_width, config.attn_pool_num_heads, config.clip_embed_dim)

    @property
    def dtype(self) -> torch.dtype:
        return self.text_projection.dtype

    @property
    def embed_dim(self) -> int:
        return self.config.clip_embed_dim

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pixels (B, 3, H, W), normalised as the transform does -> image embedding (B, D), unnormalised."""
        vision_tokens = self.vision_model(pixel_values.to(self.dtype))
        backbone = self.clip_projector(vision_tokens)
        if self.image_head == "c":
            return backbone
        queries = self.query_tokens.expand(pixel_values.shape[0], -1, -1)
        query_embeds = self.clip_projector2(self.qllama.encode_queries(queries, vision_tokens))
        # The ensemble is the sum of the two L2-normalised embeddings, not renormalised.
        return query_embeds / query_embeds.norm(dim=1, keepdim=True) + backbone / backbone.norm(dim=1, keepdim=True)

    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token ids (B, L), right-padded with 0 -> text embedding (B, D), unnormalised."""
        return self.qllama.encode_tokens(input_ids) @ self.text_projection

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CLIP logits (per image, per text) = exp(logit_scale) * cosine similarity."""
        image_features = self.encode_image(image)
        text_features = self.encode_text(text)
        image_features = image_features / image_features.norm(dim=1, keepdim=True)
        text_features = text_features / text_features.norm(dim=1, keepdim=True)
        logits_per_image = self.logit_scale.exp() * image_features @ text_features.t()
        return logits_per_image, logits_per_image.t()


def create_model(
    config: InternVLConfig,
    checkpoint_format: CheckpointFormat,
    image_head: ImageHead,
    device: str | torch.device = "meta",
) -> InternVL:
    """Instantiates an InternVL (on the meta device by default: no memory, weights to be loaded)."""
    with torch.device(device):
        model = InternVL(config, checkpoint_format, image_head)
    return model.eval().requires_grad_(False)


def create_initialized_model(config: InternVLConfig, seed: int) -> InternVL:
    """An InternVL-G (it holds InternVL-C too) with seeded random weights, for training from scratch
    or benchmarking sizes that have no published weights (checkpoints never need this).

    Linear, conv and embedding layers keep torch's default initialisation, drawn under `seed`;
    the parameters the model creates as zeros (class token, positions, query tokens, text
    projection) get small normal values, and the logit scale CLIP's log(1/0.07).
    """
    torch.manual_seed(seed)
    model = create_model(config, "hf", "g", device="cpu")
    with torch.no_grad():
        embeddings = model.vision_model.embeddings
        for param in (embeddings.class_embedding, embeddings.position_embedding, model.query_tokens):
            param.normal_(std=0.02)
        model.text_projection.normal_(std=config.text.hidden_size**-0.5)
        model.logit_scale.fill_(math.log(1 / 0.07))
    return model
