"""`--model_type open_clip`: an open_clip architecture with a local checkpoint file (no hub download).

Architectures with a Hugging Face text tower (roberta-ViT-B-32, xlm-roberta-*, mt5-*, nllb-clip-*)
read that tower's config and tokenizer through transformers: they must be in the local Hugging
Face cache (HF_HOME), since the hub's offline switches are on (`zsbench.offline`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from zsbench.errors import CheckpointError, ConfigError, UnknownNameError
from zsbench.models.checkpoints import load_torch_file
from zsbench.offline import forbid_hub_downloads


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
    forbid_hub_downloads()
    import open_clip

    if model_name not in open_clip.list_models():
        raise UnknownNameError("open_clip model", model_name, open_clip.list_models())
    if not pretrained.is_file():
        raise CheckpointError(
            f"open_clip checkpoint {pretrained} is not a file. zsbench never downloads weights: pass "
            "--pretrained PATH to a local checkpoint (a state dict saved by torch.save or safetensors)."
        )
    if pretrained.suffix != ".safetensors":
        # A pickle with code or a truncated file is refused here, with zsbench's message (memory-mapped: cheap).
        load_torch_file(pretrained)
    hf_tower = open_clip.get_model_config(model_name).get("text_cfg", {}).get("hf_model_name")
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
        tokenizer = open_clip.get_tokenizer(model_name)
    except OSError as err:  # transformers' from_pretrained, offline, when the tower's files are not local
        raise ConfigError(
            f"open_clip model {model_name} builds its text tower from the Hugging Face model {hf_tower!r}, whose "
            "config and tokenizer are not on this machine: zsbench never downloads them (the hub is offline). "
            f"Put them in the local Hugging Face cache (HF_HOME) first, or use a model without a Hugging Face text tower. Details: {err}"
        ) from err
    except RuntimeError as err:  # open_clip's strict load_state_dict reports key mismatches so
        raise CheckpointError(f"{pretrained} does not fit open_clip model {model_name}: {err}") from err
    return model.eval().requires_grad_(False), transform, tokenizer
