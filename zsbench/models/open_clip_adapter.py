"""`--model_type open_clip`: an open_clip architecture with a local checkpoint file (no hub download).

Architectures with a Hugging Face text tower (roberta-ViT-B-32, xlm-roberta-*, mt5-*, nllb-clip-*)
read that tower's config and tokenizer through transformers: they must be in the local Hugging
Face cache (HF_HOME), since the hub's offline switches are on (`zsbench.offline`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from zsbench.errors import CheckpointError, ConfigError, UnknownNameError
from zsbench.models.checkpoints import load_torch_file
from zsbench.models.families import LoadedClip
from zsbench.offline import forbid_hub_downloads

# zsbench's precisions as open_clip's: fp16 and bf16 models are wholly in that dtype ("pure"), weights and
# activations, as InternVL's are; what such a graph keeps in fp32 is in the family's export policy.
OPEN_CLIP_PRECISIONS = {"fp32": "fp32", "fp16": "pure_fp16", "bf16": "pure_bf16"}


def check_checkpoint_file(pretrained: Path) -> None:
    """Refuses a `--pretrained` that is not a local file (an open_clip tag such as laion400m_e32 would be a download).

    Raises:
        CheckpointError: saying zsbench never downloads.
    """
    if not pretrained.is_file():
        raise CheckpointError(
            f"open_clip checkpoint {pretrained} is not a file. zsbench never downloads weights: pass "
            "--pretrained PATH to a local checkpoint (a state dict saved by torch.save or safetensors)."
        )


def load_open_clip(model_name: str, pretrained: Path, device: torch.device, precision: str) -> LoadedClip:
    """Builds `model_name` and loads `pretrained` (a local state-dict file) strictly.

    Returns:
        The model, its tokenizer and its preprocessing (open_clip's `PreprocessCfg`, as a dict).
    """
    forbid_hub_downloads()
    import open_clip

    if model_name not in open_clip.list_models():
        raise UnknownNameError("open_clip model", model_name, open_clip.list_models())
    check_checkpoint_file(pretrained)
    if pretrained.suffix != ".safetensors":
        # A pickle with code or a truncated file is refused here, with zsbench's message (memory-mapped: cheap).
        load_torch_file(pretrained)
    hf_tower = open_clip.get_model_config(model_name).get("text_cfg", {}).get("hf_model_name")
    try:
        model = open_clip.create_model(
            model_name,
            pretrained=str(pretrained),
            precision=OPEN_CLIP_PRECISIONS[precision],
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
    preprocess = dict(open_clip.get_model_preprocess_cfg(model))
    return LoadedClip(model.eval().requires_grad_(False), tokenizer, preprocess)


def open_clip_transform(preprocess: dict[str, Any]) -> Callable:
    """open_clip's eval transform for a preprocessing record (as `create_model_and_transforms` builds it)."""
    from open_clip.transform import PreprocessCfg, image_transform_v2

    return image_transform_v2(PreprocessCfg(**preprocess), is_train=False)
