"""`--model_type open_clip`: any open_clip architecture with a checkpoint file or pretrained tag (see `open_clip_adapter`).

The architectures whose towers are open_clip's own `VisionTransformer` and `TextTransformer` with its
bundled tokenizer (ViT-S-32, ViT-B-32, ViT-B-16, ViT-L-14, their quickgelu variants, ...) export to
ONNX and TensorRT; those with towers from timm (ConvNeXt, EVA, SigLIP, ...) or Hugging Face (roberta,
xlm-roberta, mt5, nllb text towers), ResNets and CoCa run on the torch backend only. Which is which
is read from the architecture's config (`_exports`), without importing open_clip or torch.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import cache
from importlib import util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsbench.errors import UnknownNameError
from zsbench.models.export_spec import (
    FIXED_LENGTH_TEXT_GRAPH,
    FP16_REDUCTIONS,
    IMAGE_GRAPH,
    ExportSpec,
    KeepInFloat,
    PrecisionPolicy,
    Quantization,
)
from zsbench.models.families import CheckpointRecord, InputSize, LoadedClip, ModelFamily

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zsbench.models.ref import ModelRef
    from zsbench.types import Precision


@cache
def _bundled_configs() -> dict[str, dict[str, Any]]:
    """open_clip's architecture configs (`open_clip/model_configs/*.json`), read without importing open_clip."""
    spec = util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return {}
    folder = Path(next(iter(spec.submodule_search_locations))) / "model_configs"
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))}


def _model_config(model_name: str) -> dict[str, Any] | None:
    """The config of `model_name`: from open_clip's registry once it is imported (which also holds configs added
    with `open_clip.add_model_config`), else from its bundled files."""
    if "open_clip" in sys.modules:
        return sys.modules["open_clip"].get_model_config(model_name)
    return _bundled_configs().get(model_name)


def _list_models() -> list[str]:
    if "open_clip" in sys.modules:
        return list(sys.modules["open_clip"].list_models())
    return sorted(_bundled_configs())


def _exports(config: dict[str, Any]) -> bool:
    """Whether an architecture's towers are open_clip's own VisionTransformer and TextTransformer, tokenised by
    its bundled tokenizer: the graphs zsbench traces and checks (no timm or Hugging Face tower, no ResNet, no CoCa)."""
    vision, text = config.get("vision_cfg", {}), config.get("text_cfg", {})
    return (
        isinstance(vision.get("layers"), int)  # a list of layers is a ModifiedResNet
        and "timm_model_name" not in vision
        and "hf_model_name" not in text
        and "hf_tokenizer_name" not in text
        and "multimodal_cfg" not in config  # CoCa
    )


def _exporting() -> list[str]:
    return [name for name in _list_models() if _exports(_model_config(name) or {})]


def _listing() -> list[str]:
    return [
        "any open_clip architecture (`zsbench models --open_clip` lists them), with --pretrained PATH to a local checkpoint, "
        "an open_clip pretrained tag (fetched as open_clip fetches it) or hf://ORG/REPO/FILE",
        f"export to ONNX and TensorRT (open_clip's own ViT towers): {', '.join(_exporting())}",
    ]


def _loader_name(model_name: str, task: str) -> str:
    del task  # open_clip has one eval transform for every task
    if _model_config(model_name) is None:
        raise UnknownNameError("open_clip model", model_name, _list_models())
    return "open_clip"


def _default_task(model_name: str) -> str:
    del model_name
    return "zeroshot_classification"


def _checkpoint(ref: ModelRef) -> Path:
    from zsbench.models.open_clip_adapter import open_clip_checkpoint

    return open_clip_checkpoint(ref.model, ref.pretrained, ref.revision)


def _record(ref: ModelRef) -> CheckpointRecord:
    from zsbench.models.open_clip_adapter import check_checkpoint_file

    config = _model_config(ref.model)
    if config is None:
        raise UnknownNameError("open_clip model", ref.model, _list_models())
    path = ref.checkpoint()
    check_checkpoint_file(ref.model, path)
    # Graphs take every text padded to the context length (the positional table's length).
    return CheckpointRecord(path, None, config, {"context_length": config["text_cfg"].get("context_length", 77)})


def _load(ref: ModelRef, device: torch.device, precision: Precision) -> LoadedClip:
    from zsbench.models.open_clip_adapter import load_open_clip

    return load_open_clip(ref.model, ref.checkpoint(), device, precision)


def _transform(preprocess: dict[str, Any], task: str) -> Callable:
    from zsbench.models.open_clip_adapter import open_clip_transform

    del task  # open_clip evaluates every task with its one eval transform
    return open_clip_transform(preprocess)


def _tokenizer(ref: ModelRef, config: dict[str, Any], text: dict[str, Any]) -> Callable:
    import open_clip

    del config, text
    return open_clip.get_tokenizer(ref.model)


def _describe(model: nn.Module, tokenizer: Callable) -> dict[str, object]:
    visual = getattr(model, "visual", None)
    return {
        "vision_parameters": sum(p.numel() for p in visual.parameters()) if visual is not None else None,
        "embed_dim": getattr(visual, "output_dim", None),
        "image_size": getattr(visual, "image_size", None),
        "context_length": getattr(tokenizer, "context_length", None),
    }


def _input_size(model: nn.Module) -> InputSize:
    size = getattr(model, "visual").image_size
    # Every text is padded to the context length: open_clip adds a positional table of that length.
    return InputSize(size[0] if isinstance(size, tuple) else size, int(getattr(model, "vocab_size")), int(getattr(model, "context_length")))


# open_clip's fp16 model is pure fp16 (`open_clip_adapter.OPEN_CLIP_PRECISIONS`): LayerNorm runs on fp16 inputs.
_FP16 = PrecisionPolicy((FP16_REDUCTIONS,), notes=(
    "weights and activations fp16 (open_clip's pure_fp16)",
    "LayerNormalization (opset >= 17) with stash_type=1: mean and variance in fp32",
))
# int8 and fp8: the transformers' matrix multiplications (attention in/out projections, MLPs), their results fp32;
# the layers that make the embeddings stay fp32, as InternVL's do.
_QUANTIZED = PrecisionPolicy(
    keep=(
        KeepInFloat("final image projection", "it makes the image embedding the zero-shot scores compare", names="*visual.proj"),
        KeepInFloat("attention pooling", "it makes the image embedding the zero-shot scores compare", names="*attn_pool*"),
        KeepInFloat("final text projection", "it makes the text embedding the zero-shot scores compare", names="*text_projection"),
    ),
    notes=(
        "patch embedding (Conv): not quantized",
        "LayerNorm and its statistics, attention softmax: not quantized",
        "activations, residual additions and reductions: not quantized",
    ),
    quantize=Quantization(),
)


def _export(model_name: str) -> ExportSpec | None:
    config = _model_config(model_name)
    if config is None or not _exports(config):
        return None
    # The text graph takes (batch, context length) ids: open_clip adds a positional table of that length.
    return ExportSpec(model_name, (IMAGE_GRAPH, FIXED_LENGTH_TEXT_GRAPH), {"fp16": _FP16, "int8": _QUANTIZED, "fp8": _QUANTIZED}, _tokenizer,
                      libraries=("open_clip_torch",))


FAMILY = ModelFamily(
    name="open_clip",
    list_models=_list_models,
    listing=_listing,
    loader_name=_loader_name,
    default_task=_default_task,
    checkpoint=_checkpoint,
    record=_record,
    load=_load,
    transform=_transform,
    describe=_describe,
    input_size=_input_size,
    export=_export,
    exporting=_exporting,
)
