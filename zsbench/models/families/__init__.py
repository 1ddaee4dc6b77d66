"""Model families (`--model_type`): each one module that says how to list, load, describe, size and export its models.

To add a family: write `families/<name>.py` defining `FAMILY = ModelFamily(...)` (import torch and the
family's library inside its functions, so `zsbench --help` and `zsbench models` stay fast), and register
it below by a ``"module:FAMILY"`` string. A family that exports gives `export` (model name -> `ExportSpec`):
`zsbench export` and the onnx/trt backends then handle its models with no further code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsbench.errors import NotExportableError, UnsupportedModelTypeError
from zsbench.registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zsbench.models.export_spec import ExportSpec
    from zsbench.models.ref import ModelRef
    from zsbench.types import Precision


@dataclass(frozen=True)
class LoadedClip:
    """A loaded model, its tokenizer, and its image preprocessing as a record (what an export manifest keeps,
    and what `ModelFamily.transform` turns into the transform of a task)."""

    model: nn.Module
    tokenizer: Callable
    preprocess: dict[str, Any]


@dataclass(frozen=True)
class CheckpointRecord:
    """What a checkpoint consists of, read without its weights: what caches and exports fingerprint and record.

    Attributes:
        path: the checkpoint file or folder (every regular file of a folder counts).
        tokenizer_file: a tokenizer file outside it that decides the token ids (None: none).
        config: the resolved architecture.
        text: the tokenizer's facts (context length, special ids, ...); a ``tokenizer_file`` entry is a path.
    """

    path: Path
    tokenizer_file: Path | None
    config: dict[str, Any]
    text: dict[str, Any]


@dataclass(frozen=True)
class InputSize:
    """What a model takes: square images of `image_size` pixels, token ids below `vocab_size`, and texts of exactly
    `text_length` ids (right-padded, as its tokenizer pads them), or of any length when None."""

    image_size: int
    vocab_size: int
    text_length: int | None = None


@dataclass(frozen=True)
class ModelFamily:
    """What zsbench knows about one `--model_type`.

    Attributes:
        name: the `--model_type` value.
        list_models: the model names `--model` accepts.
        listing: the lines `zsbench models` prints for the family (cheap: no torch).
        loader_name: `(model name, task) -> the loader`, as `--dry-run` shows it; raises for an unknown name.
        default_task: the task whose transform `load_clip` returns when it is not told one.
        checkpoint: `ref -> path` of the checkpoint on disk, fetched where `--pretrained` names it on a hub.
        record: `ref -> CheckpointRecord`: what the checkpoint consists of, without reading weights.
        load: `(ref, device, precision) -> LoadedClip`.
        transform: `(preprocess record, task) -> image transform`: the task is a run parameter, not a model.
        describe: `(model, tokenizer) -> sizes` for `zsbench info` (parameters and dtype are added for every family).
        input_size: `(model) -> InputSize`: the inputs `zsbench bench` synthesises and exports trace.
        export: `model name -> ExportSpec`, or None when that model does not export; None: the family never does.
        exporting: the model names that export (cheap: for `zsbench models` and refusals).
    """

    name: str
    list_models: Callable[[], list[str]]
    listing: Callable[[], list[str]]
    loader_name: Callable[[str, str], str]
    default_task: Callable[[str], str]
    checkpoint: Callable[[ModelRef], Path]
    record: Callable[[ModelRef], CheckpointRecord]
    load: Callable[[ModelRef, torch.device, Precision], LoadedClip]
    transform: Callable[[dict[str, Any], str], Callable]
    describe: Callable[[nn.Module, Callable], dict[str, object]]
    input_size: Callable[[nn.Module], InputSize]
    export: Callable[[str], ExportSpec | None] | None = None
    exporting: Callable[[], list[str]] = list


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


def export_spec(model_type: str, model_name: str, what: str) -> ExportSpec:
    """How `model_name` exports, if `what` (export, the onnx or trt backend) can handle it.

    Raises:
        NotExportableError: in one line, naming the families and models that do export.
    """
    family = get_family(model_type)
    spec = family.export(model_name) if family.export is not None else None
    if spec is not None:
        return spec
    if family.export is None:
        exporting = [name for name in MODEL_FAMILIES.names() if MODEL_FAMILIES.get(name).export is not None]
        raise NotExportableError(
            f"{what} handles model_type {', '.join(map(repr, exporting))} only, found {model_type!r}: its models are not exported "
            "to ONNX. Evaluate them with --backend torch."
        )
    family.loader_name(model_name, family.default_task(model_name))  # an unknown name says so, with close names
    raise NotExportableError(
        f"{what}: {model_type} model {model_name} does not export to ONNX; the {model_type} models that do: "
        f"{', '.join(family.exporting())}. Evaluate {model_name} with --backend torch."
    )
