"""`load_clip`: model type + name + checkpoint -> (model, transform, tokenizer), CLIP_benchmark's convention.

The model type picks a family (`zsbench.models.families`), which loads the model; this module also holds
the InternVL family's checkpoint loader (`load_internvl`), which takes the checkpoint's format and image head.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from zsbench.errors import CheckpointError
from zsbench.models.checkpoints import HF_LAYOUT, hf_weight_files, load_weights, read_tensors
from zsbench.models.config import CheckpointFormat, ImageHead, InternVLConfig, builtin_config, load_config_file
from zsbench.models.families import get_family
from zsbench.models.hub import missing_checkpoint
from zsbench.models.internvl import InternVL, create_model
from zsbench.models.ref import ModelRef
from zsbench.models.tokenizer import InternVLTokenizer, find_tokenizer_file
from zsbench.precisions import PRECISIONS
from zsbench.types import Precision, resolve_device, resolve_precision

# The configuration a .pth checkpoint gets when no --model_config is given.
PTH_DEFAULT_CONFIG = "internvl_c_13b_224px"


def list_models(model_type: str = "internvl") -> list[str]:
    """Model names `--model` accepts for `model_type` (InternVL names, or open_clip architectures)."""
    return get_family(model_type).list_models()


def resolve_internvl_config(checkpoint_format: CheckpointFormat, pretrained: Path, model_config: Path | None) -> InternVLConfig:
    """The configuration for a checkpoint: `model_config` if given, else the HF folder's config.json,
    else (a .pth file) the built-in full-size InternVL-C configuration."""
    if model_config is not None:
        return load_config_file(model_config)
    if checkpoint_format == "hf":
        if not (pretrained / "config.json").is_file():
            raise CheckpointError(f"{pretrained} has no config.json. A Hugging Face InternVL folder holds:\n{HF_LAYOUT}")
        return load_config_file(pretrained / "config.json")
    return builtin_config(PTH_DEFAULT_CONFIG)


def _check_checkpoint_kind(model_name: str, checkpoint_format: CheckpointFormat, pretrained: Path) -> None:
    problem = missing_checkpoint(str(pretrained))
    if problem is not None:
        raise CheckpointError(problem)
    if checkpoint_format == "hf" and not pretrained.is_dir():
        raise CheckpointError(
            f"{model_name} reads a Hugging Face folder, but {pretrained} is a file. For a .pth checkpoint use "
            f"{model_name.removesuffix('_hf')}; for InternVL-14B-224px pass its folder."
        )
    if checkpoint_format == "pth" and pretrained.is_dir():
        raise CheckpointError(
            f"{model_name} reads a .pth file, but {pretrained} is a folder. For a Hugging Face folder use {model_name}_hf."
        )


def load_internvl(
    model_name: str,
    checkpoint_format: CheckpointFormat,
    image_head: ImageHead,
    pretrained: Path,
    device: torch.device,
    precision: Precision,
    tokenizer_path: Path | None = None,
    model_config: Path | None = None,
) -> tuple[InternVL, InternVLTokenizer]:
    """Loads an InternVL checkpoint of `checkpoint_format` with `image_head` strictly (`model_name` names it in errors)."""
    _check_checkpoint_kind(model_name, checkpoint_format, pretrained)
    config = resolve_internvl_config(checkpoint_format, pretrained, model_config)
    # The tokenizer is checked before gigabytes of weights are read.
    tokenizer = InternVLTokenizer(find_tokenizer_file(tokenizer_path, pretrained), config.text)
    model = create_model(config, checkpoint_format, image_head, device="meta")
    if checkpoint_format == "hf":
        tensors = itertools.chain.from_iterable(read_tensors(path) for path in hf_weight_files(pretrained))
    else:
        tensors = read_tensors(pretrained)
    load_weights(model, tensors, str(pretrained), PRECISIONS.get(precision).dtype(), device, rename_pth=checkpoint_format == "pth")
    return model, tokenizer


def load_clip(
    model_type: str,
    model_name: str,
    pretrained: str | Path,
    device: str | torch.device = "cpu",
    precision: Precision | None = "fp32",
    tokenizer_path: str | Path | None = None,
    model_config: str | Path | None = None,
    revision: str | None = None,
    task: str | None = None,
) -> tuple[nn.Module, Callable, Callable]:
    """Loads a CLIP-style model with its image transform and tokenizer.

    Args:
        model_type: a registered family (``"internvl"``, ``"open_clip"``; see `zsbench models`).
        model_name: an InternVL name (``internvl_c_classification``, ``internvl_g_retrieval_hf``, ...)
            or an open_clip architecture.
        pretrained: the checkpoint: a `.pth` file, a Hugging Face folder, a hub id (``ORG/NAME``) or one file of a
            hub repository (``hf://ORG/REPO/FILE``), fetched into the Hugging Face cache where missing, or (open_clip)
            a state-dict file or one of open_clip's pretrained tags.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``; weights are loaded straight into it. None: fp16 on
            a GPU, fp32 on a CPU (`zsbench.types.resolve_precision`).
        tokenizer_path: folder with `tokenizer.model` (InternVL `.pth` checkpoints).
        model_config: JSON in the Hugging Face InternVL schema, for checkpoints of other sizes.
        revision: the hub revision (branch, tag or commit) of a hub `pretrained`.
        task: ``zeroshot_classification`` or ``zeroshot_retrieval``: whose image transform to return (None:
            the one the model name stands for, e.g. retrieval for ``internvl_g_retrieval_hf``).

    Returns:
        `(model, transform, tokenizer)`: `model.encode_image(transform(img)[None])`,
        `model.encode_text(tokenizer(["a photo of a dog."]))`.
    """
    ref = ModelRef(model_type, model_name, str(pretrained),
                   str(tokenizer_path) if tokenizer_path is not None else None,
                   str(model_config) if model_config is not None else None, revision)
    family = get_family(model_type)
    torch_device = device if isinstance(device, torch.device) else resolve_device(device)
    loaded = family.load(ref, torch_device, resolve_precision(precision, torch_device))
    return loaded.model, family.transform(loaded.preprocess, task or family.default_task(model_name)), loaded.tokenizer


def describe_model(model_type: str, model: nn.Module, tokenizer: Callable) -> dict[str, object]:
    """Parameter counts, embedding width, image size, context length and dtype of a loaded model."""
    parameters = list(model.parameters())
    return {
        "parameters": sum(p.numel() for p in parameters),
        "dtype": str(parameters[0].dtype).removeprefix("torch."),
        **get_family(model_type).describe(model, tokenizer),
    }
