"""torch -> ONNX for one InternVL model: `vision.onnx` (= `encode_image`) and `text.onnx` (= `encode_text`).

Exporter: the TorchDynamo-based `torch.onnx.export(..., dynamo=True)`, chosen deliberately.
On these models the TorchScript exporter gives a graph three times larger (1578 vs 523
nodes for tiny InternVL-G's image path: hundreds of Shape/Gather/Constant chains and `If`
nodes for the dynamic batch), loses the output's axis names, and is deprecated since torch
2.9. The dynamo exporter traces with `torch.export` (fake tensors, no copy
of the weights), emits `LayerNormalization` and named dynamic axes, keeps the torch
parameters themselves as initializers, and streams them one by one into the external-data
file. Its optimizer folds each Linear weight's transpose: on the CPU that is a numpy view
of the torch parameter (copied only one tensor at a time while saving); on a GPU each weight
is fetched to the host once. Either way the host holds about one copy of the graph's weights
in the export dtype. Measured on a 311M-parameter InternVL-G (vision graph 531 MiB, text 259
MiB, fp16): exporting on the CPU added 155 MiB of anonymous memory to the loaded model;
with the host copies a GPU export makes (simulated on the CPU) it added 652 MiB; on an H200
the GPU export's host peak rose by 1.3 GiB, the difference presumably CUDA libraries' fixed
host memory (not verified at full size).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zsbench.errors import ExportError
from zsbench.export.fingerprint import fingerprint_digests
from zsbench.export.fusions import rewrite_for_fusion
from zsbench.export.manifest import GraphSpec, IOSpec
from zsbench.export.staging import check_free_space
from zsbench.models import InternVL
from zsbench.runtime.trust import file_digests

MIN_OPSET = 18  # the dynamo exporter's minimum; >= 17 gives LayerNormalization.
# fp16 graphs are what TensorRT engines are built from: opset 23 would make QLLaMA's fp32 softmax
# the `Attention` node's softmax_precision, which TensorRT-RTX 1.7's parser rejects.
FP16_OPSET = 18
# fp32 graphs run on ONNX Runtime only, whose opset-23 `Attention`, `RotaryEmbedding` and
# `RMSNormalization` kernels make them 1.1-1.3x faster than opset 18 on a CPU (README, Throughput).
FP32_OPSET = 23


def default_opset(precision: str) -> int:
    """The opset `zsbench export` uses for `precision` unless told otherwise (see above)."""
    return FP32_OPSET if precision == "fp32" else FP16_OPSET


class ImageEncoderGraph(nn.Module):
    """`model.encode_image` as a module, so that the exporter traces exactly it (InternVL-G's
    query path and ensemble included)."""

    def __init__(self, model: InternVL) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixel_values)


class TextEncoderGraph(nn.Module):
    """`model.encode_text` as a module: ids right-padded with 0 -> embedding; the padding mask
    and the last-token pooling are computed inside the graph from the ids."""

    def __init__(self, model: InternVL) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(input_ids)


@dataclass(frozen=True)
class GraphPlan:
    """How one graph is traced: the module, example inputs, IO names and dynamic axes."""

    name: str
    module: nn.Module
    example: torch.Tensor
    input_name: str
    output_name: str
    dynamic_axes: dict[int, str]
    qllama_softmax: int


def plan_graphs(model: InternVL, device: torch.device) -> list[GraphPlan]:
    """The two graphs of `model`. Example shapes avoid 0/1 sizes, which torch.export specialises."""
    config = model.config
    layers = config.text.num_hidden_layers
    cross_layers = math.ceil(layers / config.cross_attention_frequency) if model.image_head == "g" else 0
    size = config.image_size
    # Pixels enter as float32 in both precisions: the graph casts them, as `encode_image` does.
    pixels = torch.zeros(2, 3, size, size, dtype=torch.float32, device=device)
    ids = torch.tensor([[1, 5, 6, 2], [1, 7, 2, 0]], dtype=torch.long, device=device)
    return [
        GraphPlan("vision", ImageEncoderGraph(model).eval(), pixels, "pixel_values", "image_embeds", {0: "batch"},
                  (layers + cross_layers) if model.image_head == "g" else 0),
        GraphPlan("text", TextEncoderGraph(model).eval(), ids, "input_ids", "text_embeds", {0: "batch", 1: "length"}, layers),
    ]


def _dynamic_shapes(plan: GraphPlan, context_length: int) -> dict[str, dict[int, Any]]:
    dims = {}
    for axis, name in plan.dynamic_axes.items():
        dims[axis] = torch.export.Dim(name, min=1, max=context_length) if name == "length" else torch.export.Dim(name, min=1)
    return {plan.input_name: dims}


def export_graph(
    plan: GraphPlan,
    path: Path,
    opset: int,
    context_length: int,
    fp16_policy: Callable[[Any, int], tuple[str, ...]] | None,
) -> tuple[GraphSpec, tuple[str, ...]]:
    """Traces `plan` to `path` (+ `path.data`), applies the fp16 policy and the fusion rewrites, checks the result.

    Returns:
        The graph's spec for the manifest, and its policy lines: where an fp16 graph computes in
        fp32, and the fusion-friendly rewrites (`fusions.py`).
    """
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        # The exporter warns about its own internals (deprecated APIs it calls); not actionable here.
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                plan.module,
                (plan.example,),
                dynamo=True,
                opset_version=opset,
                input_names=[plan.input_name],
                output_names=[plan.output_name],
                dynamic_shapes=_dynamic_shapes(plan, context_length),
                optimize=True,
                verbose=False,
            )
        except Exception as err:  # the exporter raises many unrelated types; all mean "could not trace"
            raise ExportError(
                f"torch.onnx.export could not trace the {plan.name} graph ({type(err).__name__}: {err}). "
                f"Expected a traceable encode_{'image' if plan.name == 'vision' else 'text'}; this is a bug in zsbench "
                "or an unsupported torch version (torch >= 2.6 is needed)."
            ) from err
    policy = fp16_policy(program.model, plan.qllama_softmax) if fp16_policy is not None else ()
    policy += rewrite_for_fusion(program.model)
    weight_bytes = sum(
        value.const_value.nbytes for value in program.model.graph.initializers.values() if value.const_value is not None
    )
    check_free_space(path.parent, weight_bytes, f"{path.name} and its weights")
    program.save(path, external_data=True)
    # The ONNX IR is a cyclic structure: without a collection, this graph's host copies of the
    # weights (fetched from the GPU) would still be alive while the next graph is exported.
    del program
    gc.collect()
    check_graph(path)
    data = path.with_name(path.name + ".data")
    inputs, outputs = io_specs(path)
    files = [p for p in (path, data) if p.exists()]
    # Hashed once, here: the folder's digest cache comes along when the staged folder is renamed into
    # place, so the check before the export's first run does not read the weights again.
    sha256 = file_digests(path.parent, [p.name for p in files])
    spec = GraphSpec(
        file=path.name,
        external_data=data.name,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        fingerprint=fingerprint_digests({p: sha256[p.name] for p in files}),
        weight_bytes=int(weight_bytes),
        sha256=sha256,
    )
    return spec, policy


def check_graph(path: Path) -> None:
    """`onnx.checker` with full shape inference, by path (so external data and > 2 GB graphs work).

    Raises:
        ExportError: naming the graph and the checker's complaint.
    """
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise ExportError(f"{path} fails onnx.checker / shape inference: {err}. This is a bug in the export.") from err


def io_specs(path: Path) -> tuple[list[IOSpec], list[IOSpec]]:
    """Names, shapes (dim names for dynamic axes) and dtypes of a graph's inputs and outputs."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def spec(value: Any) -> IOSpec:
        tensor = value.type.tensor_type
        shape = tuple(d.dim_param if d.dim_param else int(d.dim_value) for d in tensor.shape.dim)
        return IOSpec(value.name, shape, onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name)

    return [spec(v) for v in model.graph.input], [spec(v) for v in model.graph.output]


def export_graphs(
    model: InternVL, folder: Path, opset: int, precision: str, device: torch.device, log: Callable[[str], None]
) -> tuple[dict[str, GraphSpec], dict[str, tuple[str, ...]]]:
    """Writes `vision.onnx` and `text.onnx` (+ external data) of `model` into `folder`.

    Returns:
        The graph specs, and each graph's policy (fp16: where it computes in fp32; all: the rewrites).
    """
    from zsbench.export.fp16 import PTH_LAYER_SCALE, apply_fp16_policy

    if opset < MIN_OPSET:
        raise ExportError(f"--opset {opset} is too old: expected >= {MIN_OPSET} (LayerNormalization needs 17; the exporter 18).")
    specs: dict[str, GraphSpec] = {}
    policies: dict[str, tuple[str, ...]] = {}
    for plan in plan_graphs(model, device):
        start = time.perf_counter()
        spec, policy = export_graph(
            plan, folder / f"{plan.name}.onnx", opset, model.context_length, apply_fp16_policy if precision == "fp16" else None
        )
        specs[plan.name] = spec
        if policy:
            layer_scale = (PTH_LAYER_SCALE,) if precision == "fp16" and plan.name == "vision" and model.checkpoint_format == "pth" else ()
            policies[plan.name] = policy + layer_scale
        log(f"  {plan.name}.onnx: {spec.weight_bytes / 2**20:.1f} MiB of weights, {time.perf_counter() - start:.1f} s")
    return specs, policies
