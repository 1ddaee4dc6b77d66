"""`--model_type internvl`: InternVL-C and InternVL-G, from a .pth file or a Hugging Face folder.

Two registries, both data:

- `INTERNVL_GRAPHS`: what a checkpoint computes, by graph name: its format (`.pth` file or Hugging
  Face folder) and image head (InternVL-C's attention pooling, or InternVL-G's query path added).
  Exports are made per graph and checkpoint: `export/internvl_c_hf-<checkpoint>-fp16`.
- `INTERNVL_MODELS`: the seed's model names (CLIP_benchmark's spellings), each a graph and the task
  whose image transform `load_clip` returns when it is told no task. In an evaluation the task is the
  run's (`--task`, or the dataset's), so `internvl_c_classification_hf` and `internvl_c_retrieval_hf`
  are one model: one export, one parity check, one engine folder, each run with its task's transform.

To add a variant, register its graph in `INTERNVL_GRAPHS` and its names in `INTERNVL_MODELS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsbench.models.config import CheckpointFormat, ImageHead
from zsbench.models.export_spec import (
    FP16_REDUCTIONS,
    IMAGE_GRAPH,
    TEXT_GRAPH,
    ExportSpec,
    KeepInFloat,
    PrecisionPolicy,
    Quantization,
)
from zsbench.models.families import CheckpointRecord, InputSize, LoadedClip, ModelFamily
from zsbench.registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zsbench.models.ref import ModelRef
    from zsbench.types import Precision


@dataclass(frozen=True)
class InternVLGraph:
    """What an InternVL checkpoint computes: its format and its image head."""

    checkpoint_format: CheckpointFormat
    image_head: ImageHead


@dataclass(frozen=True)
class InternVLName:
    """A model name: its graph, and the task of the transform it stands for when no task is given."""

    graph: str
    task: str


INTERNVL_GRAPHS: Registry[InternVLGraph] = Registry("InternVL graph")
INTERNVL_GRAPHS.add("internvl_c", InternVLGraph("pth", "c"))
INTERNVL_GRAPHS.add("internvl_c_hf", InternVLGraph("hf", "c"))
INTERNVL_GRAPHS.add("internvl_g_hf", InternVLGraph("hf", "g"))

INTERNVL_MODELS: Registry[InternVLName] = Registry("InternVL model")
INTERNVL_MODELS.add("internvl_c_classification", InternVLName("internvl_c", "zeroshot_classification"))
INTERNVL_MODELS.add("internvl_c_retrieval", InternVLName("internvl_c", "zeroshot_retrieval"))
INTERNVL_MODELS.add("internvl_c_classification_hf", InternVLName("internvl_c_hf", "zeroshot_classification"))
INTERNVL_MODELS.add("internvl_c_retrieval_hf", InternVLName("internvl_c_hf", "zeroshot_retrieval"))
INTERNVL_MODELS.add("internvl_g_classification_hf", InternVLName("internvl_g_hf", "zeroshot_classification"))
INTERNVL_MODELS.add("internvl_g_retrieval_hf", InternVLName("internvl_g_hf", "zeroshot_retrieval"))


def graph_of(model_name: str) -> InternVLGraph:
    """The graph a model name computes."""
    return INTERNVL_GRAPHS.get(INTERNVL_MODELS.get(model_name).graph)


def _short(task: str) -> str:
    return task.removeprefix("zeroshot_")


def _listing() -> list[str]:
    lines = []
    for name in INTERNVL_MODELS.names():
        entry, graph = INTERNVL_MODELS.get(name), graph_of(name)
        source = "Hugging Face folder" if graph.checkpoint_format == "hf" else ".pth file"
        lines.append(f"{name:<30} InternVL-{graph.image_head.upper()}, {source}, graphs {entry.graph}, "
                     f"transform of the run's task ({_short(entry.task)} when none)")
    return lines


def _loader_name(model_name: str, task: str) -> str:
    graph = graph_of(model_name)
    return f"internvl_{graph.checkpoint_format}/InternVL-{graph.image_head.upper()}/{_short(task)}"


def _default_task(model_name: str) -> str:
    return INTERNVL_MODELS.get(model_name).task


def _optional_path(value: str | None) -> Path | None:
    return Path(value) if value is not None else None


def _checkpoint(ref: ModelRef) -> Path:
    from zsbench.models.hub import resolve_pretrained

    return resolve_pretrained(ref.pretrained, ref.revision)


def _record(ref: ModelRef) -> CheckpointRecord:
    from zsbench.models.config import CONTEXT_LENGTH
    from zsbench.models.factory import resolve_internvl_config
    from zsbench.models.tokenizer import PREFIX, find_tokenizer_file

    pretrained = ref.checkpoint()
    config = resolve_internvl_config(graph_of(ref.model).checkpoint_format, pretrained, _optional_path(ref.model_config))
    tokenizer_file = find_tokenizer_file(_optional_path(ref.tokenizer), pretrained)
    text = {"context_length": CONTEXT_LENGTH, "pad_id": config.text.pad_token_id, "bos_id": config.text.bos_token_id,
            "eos_id": config.text.eos_token_id, "prefix": PREFIX, "tokenizer_file": str(tokenizer_file.resolve())}
    return CheckpointRecord(pretrained, tokenizer_file, config.to_hf_dict(), text)


def _load(ref: ModelRef, device: torch.device, precision: Precision) -> LoadedClip:
    from zsbench.models.factory import load_internvl

    graph = graph_of(ref.model)
    model, tokenizer = load_internvl(ref.model, graph.checkpoint_format, graph.image_head, ref.checkpoint(), device, precision,
                                     _optional_path(ref.tokenizer), _optional_path(ref.model_config))
    return LoadedClip(model, tokenizer, _preprocess_record(model.config.image_size))


def _preprocess_record(image_size: int) -> dict[str, Any]:
    from zsbench.models.transform import IMAGENET_MEAN, IMAGENET_STD

    # The resize mode is the task's (`_transform`); recorded for the eye.
    return {"image_size": image_size, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "interpolation": "bicubic",
            "resize_mode": {"zeroshot_classification": "shortest", "zeroshot_retrieval": "squash"}}


def _transform(preprocess: dict[str, Any], task: str) -> Callable:
    """InternVL's transform for `task`: classification resizes the short side and centre-crops, retrieval squashes."""
    from zsbench.models.transform import PreprocessConfig, build_transform, task_resize_mode

    record = {**preprocess, "resize_mode": task_resize_mode(task)}
    return build_transform(PreprocessConfig.from_dict(record))


def _tokenizer(ref: ModelRef, config: dict[str, Any], text: dict[str, Any]) -> Callable:
    """The checkpoint's tokenizer, found where `ref` says now (the export's fingerprint covered its bytes)."""
    from zsbench.models.config import InternVLConfig
    from zsbench.models.tokenizer import InternVLTokenizer, find_tokenizer_file

    text_config = InternVLConfig.from_hf_dict(config, source=f"{ref.model} export manifest").text
    tokenizer_file = find_tokenizer_file(_optional_path(ref.tokenizer), ref.checkpoint())
    return InternVLTokenizer(tokenizer_file, text_config, text["context_length"], text["prefix"])


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


def _input_size(model: nn.Module) -> InputSize:
    from zsbench.models.internvl import InternVL

    assert isinstance(model, InternVL)
    return InputSize(model.config.image_size, model.config.text.vocab_size)


def _qllama_softmaxes(model: nn.Module, graph: str) -> int:
    """QLLaMA attention softmaxes of a graph: one per self-attention layer in the text graph; on InternVL-G's
    image path also one per cross-attention layer (every `cross_attention_frequency`-th layer)."""
    from zsbench.models.internvl import InternVL

    assert isinstance(model, InternVL)
    layers = model.config.text.num_hidden_layers
    if graph == "text":
        return layers
    cross_layers = -(-layers // model.config.cross_attention_frequency)
    return layers + cross_layers if model.image_head == "g" else 0


# What an fp16 graph keeps in fp32 (zsbench.export.fp16 applies it; the manifest's graph_policy records it).
_FP16_NOTES = (
    "weights and activations fp16",
    "RMSNorm statistics in fp32 (Cast in the model code, as the original)",
    "rotary cos/sin computed in fp32, then cast to fp16",
    "LayerNormalization (opset >= 17) with stash_type=1: mean and variance in fp32",
)
_QLLAMA_SOFTMAX = KeepInFloat(
    "QLLaMA attention softmax in fp32", "as the original's softmax(dtype=float32)", ("Softmax", "Attention"),
    scope=r"(^|\.)qllama(\.|$)", expected=_qllama_softmaxes,
)
_PTH_LAYER_SCALE = "layer scale multiplied in fp32 (.pth checkpoint, LayerScale(force_fp32=True))"

# What int8 and fp8 graphs quantize (zsbench.export.quantize applies it): the matrix multiplications of InternViT's
# blocks and QLLaMA's layers, their results kept fp32 (rounding every result as well, ONNX Runtime's default, was the
# largest error source on the demo checkpoint: the text embeddings' minimum cosine to fp32 fell from 0.99984 to
# 0.99847). Kept in fp32, because quantizing them breaks CLIP-style models (issue #22): what is not a matrix
# multiplication (the patch embedding's Conv, which sees raw pixels; norms and their statistics; softmax; RoPE), and
# the layers that make the embeddings the zero-shot scores compare.
_QUANTIZED = PrecisionPolicy(
    keep=(
        KeepInFloat("attention pooling heads", "they make the image embedding the zero-shot scores compare",
                    names="*clip_projector*"),
        KeepInFloat("final text projection", "it makes the text embedding the zero-shot scores compare", names="*text_projection*"),
        KeepInFloat("attention products (activation x activation MatMuls; one Attention node at opset 23)",
                    "their inputs change range with every query, which one per-tensor scale cannot follow",
                    op_types=("MatMul",), reads_weights=False),
    ),
    notes=(
        "patch embedding (Conv): not quantized",
        "RMSNorm / LayerNorm and their statistics: not quantized",
        "attention softmax (Attention, Softmax) and RotaryEmbedding: not quantized",
        "activations, residual additions and reductions: not quantized",
    ),
    quantize=Quantization(),
)


def _export_spec(graph_name: str) -> ExportSpec:
    pth = INTERNVL_GRAPHS.get(graph_name).checkpoint_format == "pth"
    fp16 = PrecisionPolicy((_QLLAMA_SOFTMAX, FP16_REDUCTIONS), _FP16_NOTES, {"vision": (_PTH_LAYER_SCALE,)} if pth else {})
    return ExportSpec(graph_name, (IMAGE_GRAPH, TEXT_GRAPH), {"fp16": fp16, "int8": _QUANTIZED, "fp8": _QUANTIZED}, _tokenizer)


def _export(model_name: str) -> ExportSpec:
    return _export_spec(INTERNVL_MODELS.get(model_name).graph)


FAMILY = ModelFamily(
    name="internvl",
    list_models=INTERNVL_MODELS.names,
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
    exporting=INTERNVL_MODELS.names,
)
