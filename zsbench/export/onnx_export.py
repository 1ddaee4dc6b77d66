"""torch -> ONNX for one model: the graphs its family's `ExportSpec` names (`vision.onnx` = `encode_image`,
`text.onnx` = `encode_text`), lowered under the spec's policy for the precision.

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
from zsbench.models.export_spec import EncoderKind, ExportSpec, GraphIO
from zsbench.precisions import ENGINE_OPSET, ENGINE_TARGET, PRECISIONS
from zsbench.registry import import_attribute
from zsbench.runtime.trust import file_digests

MIN_OPSET = 18  # the dynamo exporter's minimum; >= 17 gives LayerNormalization.


def default_opset(precision: str, target: str = "") -> int:
    """The opset `zsbench export` uses for `precision` unless told otherwise (`PrecisionSpec.opset`; graphs for
    TensorRT engines: `ENGINE_OPSET`)."""
    opset = ENGINE_OPSET if target == ENGINE_TARGET else PRECISIONS.get(precision).opset
    return opset if opset is not None else MIN_OPSET


class EncoderGraph(nn.Module):
    """`model.encode_image` or `model.encode_text` as a module, so that the exporter traces exactly it (InternVL-G's
    query path and ensemble included). Pixels enter as float32 in every precision and are cast to the model's
    dtype inside the graph; token ids enter as int64 (the padding mask and pooling are the model's own)."""

    def __init__(self, model: nn.Module, encoder: EncoderKind) -> None:
        super().__init__()
        self.model = model
        self.encoder = encoder
        self.dtype = next(model.parameters()).dtype

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        if self.encoder == "image":
            return self.model.encode_image(values.to(self.dtype))
        return self.model.encode_text(values)


@dataclass(frozen=True)
class GraphPlan:
    """How one graph is traced: the module, an example input, and the spec's IO names and dynamic axes."""

    io: GraphIO
    module: nn.Module
    example: torch.Tensor


# Example texts: a batch of two, of different lengths (torch.export specialises sizes 0 and 1).
_EXAMPLE_TEXTS = ["a photo of a dog.", "a small red circle."]


def plan_graphs(model: nn.Module, spec: ExportSpec, tokenizer: Callable, image_size: int, device: torch.device) -> list[GraphPlan]:
    """The graphs of `spec`, each with an example input: pixels of the model's size, the tokenizer's ids."""
    examples = {"image": torch.zeros(2, 3, image_size, image_size, dtype=torch.float32, device=device),
                "text": tokenizer(_EXAMPLE_TEXTS).to(device)}
    return [GraphPlan(io, EncoderGraph(model, io.encoder).eval(), examples[io.encoder]) for io in spec.graphs]


def _dynamic_shapes(io: GraphIO, context_length: int) -> list[dict[int, Any]]:
    dims = {}
    for axis, name in io.dynamic_axes.items():
        dims[axis] = torch.export.Dim(name, min=1, max=context_length) if name == "length" else torch.export.Dim(name, min=1)
    return [dims]


def export_graph(
    plan: GraphPlan,
    path: Path,
    opset: int,
    context_length: int,
    lower: Callable[[Any], tuple[str, ...]] | None,
) -> tuple[GraphSpec, tuple[str, ...]]:
    """Traces `plan` to `path` (+ `path.data`), lowers it (`lower`: the precision's graph pass under the family's
    policy), applies the fusion rewrites, and checks the result.

    Returns:
        The graph's spec for the manifest, and its policy lines: where a lowered graph computes in
        higher precision, and the fusion-friendly rewrites (`fusions.py`).
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
                input_names=[plan.io.input_name],
                output_names=[plan.io.output_name],
                dynamic_shapes=_dynamic_shapes(plan.io, context_length),
                optimize=True,
                verbose=False,
            )
        except Exception as err:  # the exporter raises many unrelated types; all mean "could not trace"
            raise ExportError(
                f"torch.onnx.export could not trace the {plan.io.name} graph ({type(err).__name__}: {err}). "
                f"Expected a traceable encode_{plan.io.encoder}; this is a bug in zsbench or in the model family's "
                "export spec, or an unsupported torch version (torch >= 2.6 is needed)."
            ) from err
    policy = lower(program.model) if lower is not None else ()
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
    return describe_graph(path, int(weight_bytes)), policy


def describe_graph(path: Path, weight_bytes: int) -> GraphSpec:
    """The manifest's spec of the saved graph `path` (+ `path.data`), once `onnx.checker` accepts it: its IO, files,
    their SHA-256 and fingerprint."""
    check_graph(path)
    data = path.with_name(path.name + ".data")
    inputs, outputs = io_specs(path)
    files = [p for p in (path, data) if p.exists()]
    # Hashed once, here: the folder's digest cache comes along when the staged folder is renamed into
    # place, so the check before the export's first run does not read the weights again.
    sha256 = file_digests(path.parent, [p.name for p in files])
    return GraphSpec(
        file=path.name,
        external_data=data.name,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        fingerprint=fingerprint_digests({p: sha256[p.name] for p in files}),
        weight_bytes=weight_bytes,
        sha256=sha256,
    )


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
    model: nn.Module, spec: ExportSpec, tokenizer: Callable, image_size: int, context_length: int, folder: Path, opset: int,
    precision: str, device: torch.device, log: Callable[[str], None],
) -> tuple[dict[str, GraphSpec], dict[str, tuple[str, ...]]]:
    """Writes the graphs of `spec` (`vision.onnx`, `text.onnx`, + external data) of `model` into `folder`.

    Returns:
        The graph specs, and each graph's policy (lowered precisions: where it computes higher; all: the rewrites).
    """
    if opset < MIN_OPSET:
        raise ExportError(f"--opset {opset} is too old: expected >= {MIN_OPSET} (LayerNormalization needs 17; the exporter 18).")
    graph_pass = PRECISIONS.get(precision).graph_pass
    lowering = import_attribute(graph_pass) if graph_pass is not None else None
    specs: dict[str, GraphSpec] = {}
    policies: dict[str, tuple[str, ...]] = {}
    for plan in plan_graphs(model, spec, tokenizer, image_size, device):
        start = time.perf_counter()
        name = plan.io.name
        lower = None if lowering is None else (
            lambda ir_model, name=name: lowering(ir_model, spec.policy(precision), model, name))  # type: ignore[misc]
        graph, policy = export_graph(plan, folder / f"{name}.onnx", opset, context_length, lower)
        specs[name] = graph
        if policy:
            policies[name] = policy
        log(f"  {name}.onnx: {graph.weight_bytes / 2**20:.1f} MiB of weights, {time.perf_counter() - start:.1f} s")
    return specs, policies
