"""`--model_type internvl`: InternVL-C and InternVL-G, from a .pth file or a Hugging Face folder.

Model names are the seed's: the task suffix selects the transform, `_hf` the Hugging Face folder
format, `internvl_g_*` InternVL-G's image head. To add a variant, register an `InternVLSpec`
under its name in `INTERNVL_MODELS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from zsbench.models.families import LoadedClip, ModelFamily
from zsbench.registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zsbench.models.ref import ModelRef
    from zsbench.types import Precision

CheckpointFormat = Literal["pth", "hf"]
ImageHead = Literal["c", "g"]


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


def _listing() -> list[str]:
    lines = []
    for name in INTERNVL_MODELS.names():
        spec = INTERNVL_MODELS.get(name)
        source = "Hugging Face folder" if spec.checkpoint_format == "hf" else ".pth file"
        lines.append(f"{name:<30} InternVL-{spec.image_head.upper()}, {spec.task} transform, {source}")
    return lines


def _loader_name(model_name: str) -> str:
    spec = INTERNVL_MODELS.get(model_name)
    return f"internvl_{spec.checkpoint_format}/InternVL-{spec.image_head.upper()}/{spec.task}"


def _optional_path(value: str | None) -> Path | None:
    return Path(value) if value is not None else None


def _checkpoint(ref: ModelRef) -> Path:
    from zsbench.models.hub import resolve_pretrained

    return resolve_pretrained(ref.pretrained, ref.revision)


def _load(ref: ModelRef, device: torch.device, precision: Precision) -> LoadedClip:
    from zsbench.models.factory import load_internvl

    return load_internvl(ref.model, _checkpoint(ref), device, precision, _optional_path(ref.tokenizer),
                         _optional_path(ref.model_config))


def _describe(model: nn.Module, tokenizer: Callable) -> dict[str, object]:
    from zsbench.models.internvl import InternVL

    assert isinstance(model, InternVL)
    return {
        "vision_parameters": sum(p.numel() for p in model.vision_model.parameters()),
        "text_parameters": sum(p.numel() for p in model.qllama.parameters()),
        "embed_dim": model.embed_dim,
        "image_size": model.config.image_size,
        "context_length": model.context_length,
        "image_head": f"InternVL-{model.image_head.upper()}",
    }


def _input_size(model: nn.Module) -> tuple[int, int]:
    from zsbench.models.internvl import InternVL

    assert isinstance(model, InternVL)
    return model.config.image_size, model.config.text.vocab_size


FAMILY = ModelFamily(
    name="internvl",
    exports=True,
    list_models=INTERNVL_MODELS.names,
    listing=_listing,
    loader_name=_loader_name,
    load=_load,
    describe=_describe,
    input_size=_input_size,
    checkpoint=_checkpoint,
)
