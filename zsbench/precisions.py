"""The precisions zsbench runs in, in one registry: what each one means to torch, to exported graphs,
to TensorRT engines and to the parity check.

A precision is a name (``--precision fp16``) and a `PrecisionSpec`. Everything that depends on the
precision reads the spec instead of testing the name: the dtype weights are loaded in, whether
graphs come in it (and the opset and graph pass that make them), whether engines are built from
those graphs, and the parity thresholds. Adding a precision (e.g. an int8 graph quantised from the
fp32 trace) is one `PRECISIONS.add(...)` here, plus its graph pass, and each model family's policy
for it (`zsbench.models.export_spec.PrecisionPolicy`): what stays in higher precision.

Importing this module is cheap (no torch): the command line reads its names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from zsbench.registry import Registry

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ParityLimits:
    """How close a graph of this precision must stay to PyTorch fp32 (see `zsbench.export.parity`)."""

    cosine: float
    cosine_fraction: float
    top1_agreement: float


@dataclass(frozen=True)
class PrecisionSpec:
    """What one precision means.

    Attributes:
        name: the ``--precision`` value.
        torch_dtype: the torch dtype weights and activations are loaded in (its attribute name: ``float16``).
        trace_in: graphs of this precision are traced from the model loaded in this precision (None: no graphs
            come in it; the precision runs on the torch backend only).
        graph_pass: ``"module:function"`` rewriting the traced graph under the family's policy for this
            precision (`zsbench.export.onnx_export.lower_graph` calls it); None: the trace is kept as is.
        opset: the ONNX opset its graphs are exported at unless ``--opset`` says otherwise.
        engine: TensorRT engines are built from its graphs.
        parity: the thresholds its graphs and engines must reach against PyTorch fp32.
        note: why the opset (shown by `zsbench export --help`).
    """

    name: str
    torch_dtype: str
    trace_in: str | None = None
    graph_pass: str | None = None
    opset: int | None = None
    engine: bool = False
    parity: ParityLimits | None = None
    note: str = ""

    @property
    def graphs(self) -> bool:
        """Whether exported graphs come in this precision."""
        return self.trace_in is not None

    def dtype(self) -> torch.dtype:
        """The torch dtype (imports torch)."""
        import torch

        return getattr(torch, self.torch_dtype)


PRECISIONS: Registry[PrecisionSpec] = Registry("precision")
# fp32 graphs run on ONNX Runtime only, whose opset-23 `Attention`, `RotaryEmbedding` and `RMSNormalization`
# kernels make them 1.1-1.3x faster than opset 18 on a CPU (README, Throughput).
PRECISIONS.add("fp32", PrecisionSpec(
    "fp32", "float32", trace_in="fp32", opset=23, parity=ParityLimits(0.99999, 1.0, 0.995),
    note="23 for fp32 (ONNX Runtime's fused attention, RoPE and RMSNorm)",
))
# fp16 graphs are what TensorRT engines are built from: opset 23 would make an fp32 softmax the `Attention`
# node's softmax_precision, which TensorRT-RTX 1.7's parser rejects.
PRECISIONS.add("fp16", PrecisionSpec(
    "fp16", "float16", trace_in="fp16", graph_pass="zsbench.export.fp16:apply_fp16_policy", opset=18, engine=True,
    parity=ParityLimits(0.999, 0.99, 0.995), note="18 for fp16 (what TensorRT builds from)",
))
PRECISIONS.add("bf16", PrecisionSpec("bf16", "bfloat16"))


def precision_names() -> tuple[str, ...]:
    """Every precision, in registration order (fp32 first)."""
    return tuple(PRECISIONS.names(sort=False))


def graph_precisions() -> tuple[str, ...]:
    """The precisions exported graphs come in."""
    return tuple(name for name in precision_names() if PRECISIONS.get(name).graphs)


def engine_precisions() -> tuple[str, ...]:
    """The precisions TensorRT engines are built from."""
    return tuple(name for name in precision_names() if PRECISIONS.get(name).engine)
