"""What a model family declares about exporting its models: `ExportSpec`, the data the export stage reads.

`zsbench.export` and `zsbench.backends` know no family: they trace the graphs a spec names, lower
them under the spec's policy for the precision, compare them with the PyTorch model the spec names
as the reference, record the checkpoint and preprocessing the family describes, and name the export
after the spec's graph name. A family whose `ModelFamily.export` returns a spec for a model name
exports that model; the same code path serves InternVL, open_clip and a family added tomorrow.

Importing this module is cheap (no torch).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from torch import nn

    from zsbench.models.ref import ModelRef

EncoderKind = Literal["image", "text"]


@dataclass(frozen=True)
class GraphIO:
    """One exported graph: which encoder it is (`encode_image` or `encode_text`), its input and output
    names, and its dynamic axes (axis -> name). An axis named ``length`` is a text length: it is capped
    at the tokenizer's context length, and engines get a length profile for it."""

    name: str
    encoder: EncoderKind
    input_name: str
    output_name: str
    dynamic_axes: Mapping[int, str]

    @property
    def dynamic_length(self) -> bool:
        """Whether the graph takes texts of any length (else every text is padded to the context length)."""
        return "length" in self.dynamic_axes.values()


# The graphs every export holds: `vision.onnx` = encode_image, `text.onnx` = encode_text (the `Encoder` contract).
IMAGE_GRAPH = GraphIO("vision", "image", "pixel_values", "image_embeds", {0: "batch"})
TEXT_GRAPH = GraphIO("text", "text", "input_ids", "text_embeds", {0: "batch", 1: "length"})
FIXED_LENGTH_TEXT_GRAPH = GraphIO("text", "text", "input_ids", "text_embeds", {0: "batch"})


@dataclass(frozen=True)
class NodeNames:
    """What a `KeepInFloat` rule sees of one graph node: its op type and its names.

    Attributes:
        name: the node's own name (``node_linear_27``).
        op_type: its ONNX op type.
        modules: the modules it was traced inside, outermost first, as the torch exporter records them
            (``model.qllama.model.layers.3.mlp.down_proj``); () when it recorded none.
        weights: the names of the initializers it reads (``model.text_projection``).
    """

    name: str
    op_type: str
    modules: tuple[str, ...] = ()
    weights: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        """The innermost module the node was traced from ('' when none was recorded)."""
        return self.modules[-1] if self.modules else ""

    def names(self) -> tuple[str, ...]:
        """Every name a `KeepInFloat.names` pattern is matched against."""
        return (self.name, *self.modules, *self.weights)

    def label(self) -> str:
        """``name (op, module)``: how reports name the node."""
        where = f", {self.module}" if self.module else ""
        return f"{self.name} ({self.op_type}{where})"


@dataclass(frozen=True)
class KeepInFloat:
    """Nodes a lowered or quantized graph keeps in fp32.

    In an fp16 graph each selected node (fed fp16) is wrapped in Cast(fp32) -> node -> Cast(back) (an
    opset-23 `Attention` node is given fp32 softmax precision instead); in an int8 or fp8 graph a selected
    node is left out of quantization. A node is selected when it passes every criterion the rule sets.

    Attributes:
        what: what is kept in fp32 (the start of the policy line the manifest records).
        why: why (its end).
        op_types: the ONNX op types concerned; () any.
        scope: a regular expression over the modules the node was traced inside (`NodeNames.modules`);
            None: anywhere.
        names: an `fnmatch` pattern over the node's names (`NodeNames.names`: its own, its modules', its
            weights'), e.g. ``*.mlp.down_proj`` or ``*text_projection*``; None: any.
        reads_weights: True: only nodes that read weights (a Linear's MatMul); False: only nodes that read none (an
            attention's activation x activation products); None: either.
        expected: `(model, graph name) -> count` of such nodes the graph must hold; a graph with another
            count is refused (the exporter did not record scopes, so the nodes cannot be told apart).
        required: the rule must select at least one node (a user's `--keep_fp32` pattern: a typo must not
            silently quantize what was meant to be kept).
    """

    what: str
    why: str
    op_types: tuple[str, ...] = ()
    scope: str | None = None
    names: str | None = None
    reads_weights: bool | None = None
    expected: Callable[[nn.Module, str], int] | None = None
    required: bool = False

    def matches(self, node: NodeNames) -> bool:
        """Whether this rule selects `node`."""
        if self.op_types and node.op_type not in self.op_types:
            return False
        if self.reads_weights is not None and bool(node.weights) != self.reads_weights:
            return False
        if self.scope is not None and not any(re.search(self.scope, module) for module in node.modules):
            return False
        return self.names is None or any(fnmatch.fnmatchcase(name, self.names) for name in node.names())

    def describe(self) -> str:
        """``what, why``: the rule as a policy line."""
        return f"{self.what}, {self.why}"


# PyTorch accumulates half reductions in fp32 and rounds the result; a strongly typed engine would accumulate in
# fp16 and can overflow (a sum over 257 tokens of InternViT-6B's activations exceeds 65504). Every family's fp16
# policy may list this rule.
FP16_REDUCTIONS = KeepInFloat(
    "fp16 reductions accumulate in fp32", "as PyTorch's half reductions do",
    ("ReduceMean", "ReduceSum", "ReduceL2", "ReduceL1", "ReduceSumSquare", "ReduceLogSumExp"),
)
USER_KEEP_WHY = "asked with --keep_fp32"


@dataclass(frozen=True)
class Quantization:
    """What a quantized precision (int8, fp8) quantizes, and how its activations are calibrated.

    Attributes:
        op_types: the op types offered to the quantizer; () every type it supports (nothing kept apart
            by type: what the per-node report is for).
        fp32_outputs: quantized op types whose results stay fp32 (quantized inputs, an fp32 result), so no
            extra rounding sits between them and the next op; () rounds results too (ONNX Runtime's default).
        activations: ONNX Runtime's activation type: ``uint8`` with a zero point (x86 VNNI multiplies
            uint8 x int8; its int8 x int8 product ran 17x slower in ONNX Runtime 1.32) or ``int8`` symmetric.
            Weights are always int8, per channel, symmetric; Model Optimizer's graphs are always symmetric.
        calibration_method: ``minmax``, ``percentile`` or ``entropy`` (ONNX Runtime's calibrators).
    """

    op_types: tuple[str, ...] = ("MatMul", "Gemm")
    fp32_outputs: tuple[str, ...] = ("MatMul", "Gemm")
    activations: Literal["uint8", "int8"] = "uint8"
    calibration_method: Literal["minmax", "percentile", "entropy"] = "minmax"

    def describe(self) -> tuple[str, ...]:
        """The policy lines of what is quantized, before the policy meets a graph."""
        ops = ", ".join(self.op_types) if self.op_types else "every op type the quantizer supports"
        lines = [f"quantized: {ops}; weights int8 per channel, symmetric; activations "
                 f"{'uint8 with a zero point' if self.activations == 'uint8' else 'int8, symmetric'}, "
                 f"calibrated ({self.calibration_method})"]
        if self.fp32_outputs:
            lines.append(f"fp32 results of {', '.join(self.fp32_outputs)} (quantized inputs, no rounding of the result)")
        return tuple(lines)


@dataclass(frozen=True)
class PrecisionPolicy:
    """What stays in higher precision when a family's graphs are lowered or quantized to one precision.

    Attributes:
        keep: nodes kept in fp32 (by the fp16 graph pass, or left out of quantization).
        notes: what the model's own code keeps in fp32 (visible as casts in the trace), or what a quantizer
            never touches (ops not in `quantize.op_types`), recorded as is.
        graph_notes: further notes for one graph only (graph name -> lines).
        quantize: for a quantized precision, what is quantized (None: the graphs are lowered, not quantized).
    """

    keep: tuple[KeepInFloat, ...] = ()
    notes: tuple[str, ...] = ()
    graph_notes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    quantize: Quantization | None = None

    def lines(self, graph: str) -> tuple[str, ...]:
        """The notes recorded for `graph`."""
        return (*self.notes, *self.graph_notes.get(graph, ()))

    def keeping(self, patterns: tuple[str, ...]) -> PrecisionPolicy:
        """This policy plus the user's ``--keep_fp32 PATTERN`` rules (each must select a node)."""
        extra = tuple(KeepInFloat(f"--keep_fp32 {pattern}", USER_KEEP_WHY, names=pattern, required=True) for pattern in patterns)
        return replace(self, keep=self.keep + extra)


@dataclass(frozen=True)
class ExportSpec:
    """How one model exports.

    Attributes:
        graph: the graph name: models whose spec names the same graph, from the same checkpoint, export
            identical graphs and share one export folder (`<graph>-<checkpoint>-<precision>`), parity
            check and engines; the task only chooses the image transform, which runs before the graphs.
        graphs: the graphs of an export (see `GraphIO`).
        policies: precision -> what stays in higher precision (`zsbench.precisions` lists the precisions
            graphs come in; one without a policy is traced and kept as is).
        tokenizer: `(ref, config, text) -> tokenizer`, built from the checkpoint and the manifest's `config`
            and `text` records without reading weights (what the onnx and trt backends feed their graphs).
        reference: the precision of the PyTorch model the parity check compares the graphs with (TF32 off).
        libraries: the distributions the model's code comes from, whose versions the manifest records.
    """

    graph: str
    graphs: tuple[GraphIO, ...]
    policies: Mapping[str, PrecisionPolicy]
    tokenizer: Callable[[ModelRef, dict[str, Any], dict[str, Any]], Callable]
    reference: str = "fp32"
    libraries: tuple[str, ...] = ()

    def policy(self, precision: str) -> PrecisionPolicy:
        """The policy for `precision` (none: nothing is kept apart)."""
        return self.policies.get(precision, PrecisionPolicy())

    def io(self, name: str) -> GraphIO:
        """The graph called `name`."""
        return next(graph for graph in self.graphs if graph.name == name)
