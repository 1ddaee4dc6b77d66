"""What a model family declares about exporting its models: `ExportSpec`, the data the export stage reads.

`zsbench.export` and `zsbench.backends` know no family: they trace the graphs a spec names, lower
them under the spec's policy for the precision, compare them with the PyTorch model the spec names
as the reference, record the checkpoint and preprocessing the family describes, and name the export
after the spec's graph name. A family whose `ModelFamily.export` returns a spec for a model name
exports that model; the same code path serves InternVL, open_clip and a family added tomorrow.

Importing this module is cheap (no torch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
class KeepInFloat:
    """Nodes a lowered graph keeps in fp32: each is wrapped in Cast(fp32) -> node -> Cast(back) (or, for an
    opset-23 `Attention` node, given fp32 softmax precision).

    Attributes:
        what: what is kept in fp32 (the start of the policy line the manifest records).
        why: why (its end).
        op_types: the ONNX op types concerned (only nodes fed fp16 count).
        scope: a regular expression over the exporter's module scopes (`pkg.torch.onnx.name_scopes`): only
            nodes traced inside a matching module; None: anywhere.
        expected: `(model, graph name) -> count` of such nodes the graph must hold; a graph with another
            count is refused (the exporter did not record scopes, so the nodes cannot be told apart).
    """

    what: str
    why: str
    op_types: tuple[str, ...]
    scope: str | None = None
    expected: Callable[[nn.Module, str], int] | None = None


# PyTorch accumulates half reductions in fp32 and rounds the result; a strongly typed engine would accumulate in
# fp16 and can overflow (a sum over 257 tokens of InternViT-6B's activations exceeds 65504). Every family's fp16
# policy may list this rule.
FP16_REDUCTIONS = KeepInFloat(
    "fp16 reductions accumulate in fp32", "as PyTorch's half reductions do",
    ("ReduceMean", "ReduceSum", "ReduceL2", "ReduceL1", "ReduceSumSquare", "ReduceLogSumExp"),
)


@dataclass(frozen=True)
class PrecisionPolicy:
    """What stays in higher precision when a family's graphs are lowered to one precision.

    Attributes:
        keep: nodes the graph pass keeps in fp32.
        notes: what the model's own code keeps in fp32 (visible as casts in the trace), recorded as is.
        graph_notes: further notes for one graph only (graph name -> lines).
    """

    keep: tuple[KeepInFloat, ...] = ()
    notes: tuple[str, ...] = ()
    graph_notes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def lines(self, graph: str) -> tuple[str, ...]:
        """The notes recorded for `graph`."""
        return (*self.notes, *self.graph_notes.get(graph, ()))


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
