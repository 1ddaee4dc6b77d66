"""`--model_type open_clip`: an open_clip architecture with a local checkpoint file (no hub download)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from zsbench.errors import CheckpointError, UnknownNameError


def list_open_clip_models() -> list[str]:
    """open_clip architecture names (from its bundled configs)."""
    import open_clip

    return list(open_clip.list_models())


def load_open_clip(
    model_name: str, pretrained: Path, device: torch.device, precision: str
) -> tuple[nn.Module, Callable, Callable]:
    """Builds `model_name` and loads `pretrained` (a local state-dict file) strictly.

    Returns:
        (model, eval transform, tokenizer) in CLIP_benchmark's convention.
    """
    import open_clip

    if model_name not in open_clip.list_models():
        raise UnknownNameError("open_clip model", model_name, open_clip.list_models())
    if not pretrained.is_file():
        raise CheckpointError(
            f"open_clip checkpoint {pretrained} is not a file. zsbench never downloads weights: pass "
            "--pretrained PATH to a local checkpoint (a state dict saved by torch.save or safetensors)."
        )
    try:
        model, _, transform = open_clip.create_model_and_transforms(
            model_name,
            pretrained=str(pretrained),
            precision=precision,
            device=device,
            weights_only=True,
            # Towers with Hugging Face text models would otherwise fetch their own weights.
            pretrained_text=False,
        )
    except RuntimeError as err:  # open_clip's strict load_state_dict reports key mismatches so
        raise CheckpointError(f"{pretrained} does not fit open_clip model {model_name}: {err}") from err
    return model.eval().requires_grad_(False), transform, open_clip.get_tokenizer(model_name)
