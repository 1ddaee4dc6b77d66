"""Model families (`--model_type`): each one module that says how to list, load, describe and size its models.

To add a family: write `families/<name>.py` defining `FAMILY = ModelFamily(...)` (import torch and the
family's library inside its functions, so `zsbench --help` and `zsbench models` stay fast), and register
it below by a ``"module:FAMILY"`` string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zsbench.errors import NotExportableError, UnsupportedModelTypeError
from zsbench.registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zsbench.models.ref import ModelRef
    from zsbench.types import Precision

LoadedClip = tuple["nn.Module", Callable, Callable]


@dataclass(frozen=True)
class ModelFamily:
    """What zsbench knows about one `--model_type`.

    Attributes:
        name: the `--model_type` value.
        exports: whether `zsbench export` and the onnx/trt backends handle its models.
        list_models: the model names `--model` accepts.
        listing: the lines `zsbench models` prints for the family (cheap: no torch).
        loader_name: the loader a model name resolves to, as `--dry-run` shows it; raises for an unknown name.
        load: `(ref, device, precision) -> (model, transform, tokenizer)`, CLIP_benchmark's convention.
        describe: `(model, tokenizer) -> sizes` for `zsbench info` (parameters and dtype are added for every family).
        input_size: `(model) -> (image size, vocabulary size)`, the inputs `zsbench bench` synthesises.
        checkpoint: `(ref) -> path` of the checkpoint on disk, fetched where `--pretrained` names it on a hub.
    """

    name: str
    exports: bool
    list_models: Callable[[], list[str]]
    listing: Callable[[], list[str]]
    loader_name: Callable[[str], str]
    load: Callable[[ModelRef, torch.device, Precision], LoadedClip]
    describe: Callable[[nn.Module, Callable], dict[str, object]]
    input_size: Callable[[nn.Module], tuple[int, int]]
    checkpoint: Callable[[ModelRef], Path]


MODEL_FAMILIES: Registry[ModelFamily] = Registry("model_type")
MODEL_FAMILIES.add("internvl", "zsbench.models.families.internvl:FAMILY")
MODEL_FAMILIES.add("open_clip", "zsbench.models.families.open_clip:FAMILY")


def get_family(model_type: str) -> ModelFamily:
    """The family registered as `model_type`.

    Raises:
        UnsupportedModelTypeError: no such family (CLIP_benchmark's ja_clip, or a typo).
    """
    if model_type not in MODEL_FAMILIES:
        raise UnsupportedModelTypeError(model_type, MODEL_FAMILIES.names())
    return MODEL_FAMILIES.get(model_type)


def require_exportable(model_type: str, what: str) -> ModelFamily:
    """The family of `model_type`, if `what` (export, the onnx or trt backend) handles it.

    Raises:
        NotExportableError: the family runs on the torch backend only.
    """
    family = get_family(model_type)
    if not family.exports:
        exporting = [name for name in MODEL_FAMILIES.names() if MODEL_FAMILIES.get(name).exports]
        raise NotExportableError(
            f"{what} handles model_type {', '.join(map(repr, exporting))} only, found {model_type!r}: its models are not exported "
            "to ONNX. Evaluate them with --backend torch."
        )
    return family
