"""`--model_type open_clip`: any open_clip architecture with a checkpoint file or pretrained tag (see `open_clip_adapter`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from zsbench.models.families import LoadedClip, ModelFamily

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zsbench.models.ref import ModelRef
    from zsbench.types import Precision


def _list_models() -> list[str]:
    from zsbench.models.open_clip_adapter import list_open_clip_models

    return list_open_clip_models()


def _listing() -> list[str]:
    return ["any open_clip architecture (`zsbench models --open_clip` lists them), with --pretrained PATH to a local checkpoint, "
            "an open_clip pretrained tag (fetched as open_clip fetches it) or hf://ORG/REPO/FILE"]


def _loader_name(model_name: str) -> str:
    # Checked when the model loads: listing open_clip's architectures imports torch, which a plan avoids.
    del model_name
    return "open_clip"


def _checkpoint(ref: ModelRef) -> Path:
    from zsbench.models.open_clip_adapter import open_clip_checkpoint

    return open_clip_checkpoint(ref.model, ref.pretrained, ref.revision)


def _load(ref: ModelRef, device: torch.device, precision: Precision) -> LoadedClip:
    from zsbench.models.open_clip_adapter import load_open_clip

    return load_open_clip(ref.model, _checkpoint(ref), device, precision)


def _describe(model: nn.Module, tokenizer: Callable) -> dict[str, object]:
    visual = getattr(model, "visual", None)
    return {
        "vision_parameters": sum(p.numel() for p in visual.parameters()) if visual is not None else None,
        "embed_dim": getattr(visual, "output_dim", None),
        "image_size": getattr(visual, "image_size", None),
        "context_length": getattr(tokenizer, "context_length", None),
    }


def _input_size(model: nn.Module) -> tuple[int, int]:
    size = getattr(model, "visual").image_size
    return (size[0] if isinstance(size, tuple) else size), int(getattr(model, "vocab_size"))


FAMILY = ModelFamily(
    name="open_clip",
    exports=False,
    list_models=_list_models,
    listing=_listing,
    loader_name=_loader_name,
    load=_load,
    describe=_describe,
    input_size=_input_size,
    checkpoint=_checkpoint,
)
