"""`load_clip`: model name + checkpoint -> (model, transform, tokenizer), CLIP_benchmark's convention.

Model names are the seed's: the task suffix selects the transform, `_hf` the Hugging Face
folder format, `internvl_g_*` InternVL-G's image head. To add an InternVL variant, register
an `InternVLSpec` under its name in `INTERNVL_MODELS`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from zsbench.errors import BackendUnavailableError, CheckpointError, UnknownNameError
from zsbench.models.checkpoints import HF_LAYOUT, hf_weight_files, load_weights, read_tensors
from zsbench.models.config import InternVLConfig, builtin_config, load_config_file
from zsbench.models.internvl import CheckpointFormat, ImageHead, InternVL, create_model
from zsbench.models.open_clip_adapter import list_open_clip_models, load_open_clip
from zsbench.models.tokenizer import InternVLTokenizer, find_tokenizer_file
from zsbench.models.transform import PreprocessConfig, build_transform, task_resize_mode
from zsbench.registry import Registry

Precision = Literal["fp32", "fp16", "bf16"]
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
MODEL_TYPES = ("internvl", "open_clip")
# The configuration a .pth checkpoint gets when no --model_config is given.
PTH_DEFAULT_CONFIG = "internvl_c_13b_224px"


@dataclass(frozen=True)
class InternVLSpec:
    """What an InternVL model name means: checkpoint format, image head and task transform."""

    checkpoint_format: CheckpointFormat
    image_head: ImageHead
    task: Literal["classification", "retrieval"]


INTERNVL_MODELS: Registry[InternVLSpec] = Registry("InternVL model")
INTERNVL_MODELS.add("internvl_c_classification", InternVLSpec("pth", "c", "classification"))
INTERNVL_MODELS.add("internvl_c_retrieval", InternVLSpec("pth", "c", "retrieval"))
INTERNVL_MODELS.add("internvl_c_classification_hf", InternVLSpec("hf", "c", "classification"))
INTERNVL_MODELS.add("internvl_c_retrieval_hf", InternVLSpec("hf", "c", "retrieval"))
INTERNVL_MODELS.add("internvl_g_classification_hf", InternVLSpec("hf", "g", "classification"))
INTERNVL_MODELS.add("internvl_g_retrieval_hf", InternVLSpec("hf", "g", "retrieval"))


def export_graph_name(model_name: str) -> str:
    """The name of the ONNX graphs an InternVL name exports to: the name without its task, as
    ``internvl_c_hf`` for both ``internvl_c_classification_hf`` and ``internvl_c_retrieval_hf``.

    The task only selects the image transform, which runs before the graphs; the image head and
    the checkpoint format decide the graphs, so the two task names share one export.
    """
    spec = INTERNVL_MODELS.get(model_name)
    return f"internvl_{spec.image_head}" + ("_hf" if spec.checkpoint_format == "hf" else "")


def list_models(model_type: str = "internvl") -> list[str]:
    """Model names for `model_type` (InternVL names, or open_clip architectures)."""
    if model_type == "open_clip":
        return list_open_clip_models()
    _check_model_type(model_type)
    return INTERNVL_MODELS.names()


def _check_model_type(model_type: str) -> None:
    if model_type not in MODEL_TYPES:
        raise UnknownNameError("model_type", model_type, MODEL_TYPES)


def default_device() -> str:
    """The device used when none is given: the GPU when torch sees one, else the CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def parse_device(device: str | torch.device) -> torch.device:
    """`device` as a torch device, if it is cpu or cuda[:N] (whether or not this machine has it)."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise BackendUnavailableError(f"--device {device} is not a device: expected cpu, cuda or cuda:N.") from err
    if parsed.type not in ("cpu", "cuda"):
        raise BackendUnavailableError(f"--device {device}: zsbench runs on cpu or cuda (cuda:N), not {parsed.type}.")
    return parsed


def resolve_device(device: str | torch.device) -> torch.device:
    """Checks that `device` is cpu or cuda[:N] and exists on this machine."""
    device = parse_device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(
            "--device cuda was requested but torch sees no CUDA GPU. Use --device cpu, or install a CUDA build of torch."
        )
    return device


def resolve_internvl_config(spec: InternVLSpec, pretrained: Path, model_config: Path | None) -> InternVLConfig:
    """The configuration for a checkpoint: `model_config` if given, else the HF folder's config.json,
    else (a .pth file) the built-in full-size InternVL-C configuration."""
    if model_config is not None:
        return load_config_file(model_config)
    if spec.checkpoint_format == "hf":
        if not (pretrained / "config.json").is_file():
            raise CheckpointError(f"{pretrained} has no config.json. A Hugging Face InternVL folder holds:\n{HF_LAYOUT}")
        return load_config_file(pretrained / "config.json")
    return builtin_config(PTH_DEFAULT_CONFIG)


def _check_checkpoint_kind(model_name: str, spec: InternVLSpec, pretrained: Path) -> None:
    if not pretrained.exists():
        raise CheckpointError(f"Checkpoint {pretrained} does not exist. Put the weights under pretrained/ (see pretrained/README.md).")
    if spec.checkpoint_format == "hf" and not pretrained.is_dir():
        raise CheckpointError(
            f"{model_name} reads a Hugging Face folder, but {pretrained} is a file. For a .pth checkpoint use "
            f"{model_name.removesuffix('_hf')}; for InternVL-14B-224px pass its folder."
        )
    if spec.checkpoint_format == "pth" and pretrained.is_dir():
        raise CheckpointError(
            f"{model_name} reads a .pth file, but {pretrained} is a folder. For a Hugging Face folder use {model_name}_hf."
        )


def load_internvl(
    model_name: str,
    pretrained: Path,
    device: torch.device,
    precision: Precision,
    tokenizer_path: Path | None = None,
    model_config: Path | None = None,
) -> tuple[InternVL, Callable, InternVLTokenizer]:
    """Loads an InternVL model name (see `INTERNVL_MODELS`) from its checkpoint, strictly."""
    spec = INTERNVL_MODELS.get(model_name)
    _check_checkpoint_kind(model_name, spec, pretrained)
    config = resolve_internvl_config(spec, pretrained, model_config)
    # The tokenizer is checked before gigabytes of weights are read.
    tokenizer = InternVLTokenizer(find_tokenizer_file(tokenizer_path, pretrained), config.text)
    model = create_model(config, spec.checkpoint_format, spec.image_head, device="meta")
    if spec.checkpoint_format == "hf":
        tensors = itertools.chain.from_iterable(read_tensors(path) for path in hf_weight_files(pretrained))
    else:
        tensors = read_tensors(pretrained)
    load_weights(model, tensors, str(pretrained), DTYPES[precision], device, rename_pth=spec.checkpoint_format == "pth")
    transform = build_transform(PreprocessConfig(config.image_size, task_resize_mode(spec.task)))
    return model, transform, tokenizer


def load_clip(
    model_type: str,
    model_name: str,
    pretrained: str | Path,
    device: str | torch.device = "cpu",
    precision: Precision = "fp32",
    tokenizer_path: str | Path | None = None,
    model_config: str | Path | None = None,
) -> tuple[nn.Module, Callable, Callable]:
    """Loads a CLIP-style model with its image transform and tokenizer.

    Args:
        model_type: ``"internvl"`` or ``"open_clip"``.
        model_name: an InternVL name (``internvl_c_classification``, ``internvl_g_retrieval_hf``, ...)
            or an open_clip architecture.
        pretrained: the checkpoint: a `.pth` file, a Hugging Face folder, or (open_clip) a state-dict file.
        device: ``"cpu"`` or ``"cuda"``.
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``; weights are loaded straight into it.
        tokenizer_path: folder with `tokenizer.model` (InternVL `.pth` checkpoints).
        model_config: JSON in the Hugging Face InternVL schema, for checkpoints of other sizes.

    Returns:
        `(model, transform, tokenizer)`: `model.encode_image(transform(img)[None])`,
        `model.encode_text(tokenizer(["a photo of a dog."]))`.
    """
    _check_model_type(model_type)
    if precision not in DTYPES:
        raise UnknownNameError("precision", precision, DTYPES)
    device = resolve_device(device)
    pretrained = Path(pretrained)
    if model_type == "open_clip":
        return load_open_clip(model_name, pretrained, device, precision)
    return load_internvl(
        model_name,
        pretrained,
        device,
        precision,
        Path(tokenizer_path) if tokenizer_path is not None else None,
        Path(model_config) if model_config is not None else None,
    )


def describe_model(model: nn.Module, tokenizer: Callable) -> dict[str, object]:
    """Parameter counts, embedding width, image size, context length and dtype of a loaded model."""
    parameters = list(model.parameters())
    info: dict[str, object] = {
        "parameters": sum(p.numel() for p in parameters),
        "dtype": str(parameters[0].dtype).removeprefix("torch."),
    }
    if isinstance(model, InternVL):
        info.update(
            vision_parameters=sum(p.numel() for p in model.vision_model.parameters()),
            text_parameters=sum(p.numel() for p in model.qllama.parameters()),
            embed_dim=model.embed_dim,
            image_size=model.config.image_size,
            context_length=model.context_length,
            image_head=f"InternVL-{model.image_head.upper()}",
        )
    else:
        visual = getattr(model, "visual", None)
        info.update(
            vision_parameters=sum(p.numel() for p in visual.parameters()) if visual is not None else None,
            embed_dim=getattr(visual, "output_dim", None),
            image_size=getattr(visual, "image_size", None),
            context_length=getattr(tokenizer, "context_length", None),
        )
    return info
