"""The precisions zsbench runs in, in one registry: what each one means to torch, to exported graphs,
to TensorRT engines and to the parity check.

A precision is a name (``--precision fp16``) and a `PrecisionSpec`. Everything that depends on the
precision reads the spec instead of testing the name: the dtype weights are loaded in, whether
graphs come in it (and the opset, graph pass or quantizer that make them), which runtimes run them,
whether engines are built from them, and the parity thresholds. Adding a precision is one
`PRECISIONS.add(...)` here, plus its graph pass or quantizer, and each model family's policy for it
(`zsbench.models.export_spec.PrecisionPolicy`): what stays in higher precision.

Quantized precisions (int8, fp8) are traced in fp32 and then quantized, calibrated on real model
inputs. ONNX Runtime and TensorRT want different quantized graphs (ONNX Runtime's fast int8
kernels multiply uint8 activations with a zero point; TensorRT builds symmetric Q/DQ graphs at
opset 18), so a quantized precision may name two quantizers: `quantizer` for the graphs ONNX
Runtime runs, `engine_quantizer` for the graphs engines are built from. Graphs made for engines are
an export of their own, whose folder name ends in ``-trt`` (`ENGINE_TARGET`).

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
    """How close a graph of this precision must stay to PyTorch fp32 (`zsbench.export.parity.ParityThresholds`
    explains each limit)."""

    cosine: float
    cosine_fraction: float
    top1_agreement: float
    mean_cosine: float | None = None
    tie_margin: float = 0.0


@dataclass(frozen=True)
class PrecisionSpec:
    """What one precision means.

    Attributes:
        name: the ``--precision`` value.
        torch_dtype: the torch dtype weights and activations are loaded in (its attribute name: ``float16``).
        trace_in: graphs of this precision are traced from the model loaded in this precision (None: no graphs
            come in it; the precision runs on the torch backend only).
        eager: the torch backend runs it (quantized precisions run only as graphs and engines).
        graph_pass: ``"module:function"`` rewriting the traced graph under the family's policy for this
            precision (`zsbench.export.onnx_export.lower_graph` calls it); None: the trace is kept as is.
        opset: the ONNX opset its graphs are exported at unless ``--opset`` says otherwise.
        engine: TensorRT engines are built from its graphs (those of `engine_quantizer` when it is set).
        onnx: ONNX Runtime runs its graphs (``--backend onnx``); fp8 graphs exist only to build engines from.
        quantizer: ``"module:attribute"`` of the `zsbench.export.quantize.record.Quantizer` quantizing the traced graphs
            into the graphs ONNX Runtime runs, calibrated on real inputs; None: the traced graphs are kept.
        engine_quantizer: the same for the Q/DQ graphs TensorRT engines are built from, an export of their own
            (`ENGINE_TARGET`); None: engines are built from the precision's own graphs.
        min_compute_capability: the oldest GPU its engines run on ("8.9": FP8 units), None: every one TensorRT targets.
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
    eager: bool = True
    onnx: bool = True
    quantizer: str | None = None
    engine_quantizer: str | None = None
    min_compute_capability: str | None = None

    @property
    def graphs(self) -> bool:
        """Whether exported graphs come in this precision."""
        return self.trace_in is not None

    @property
    def quantized(self) -> bool:
        """Whether its graphs are quantized from an fp32 trace (calibrated; `--keep_fp32` applies)."""
        return self.quantizer is not None or self.engine_quantizer is not None

    def target(self, for_engines: bool) -> str:
        """The export target of its graphs: `ENGINE_TARGET` for graphs made to build engines from (when engines need
        their own, or when ONNX Runtime does not run this precision), else "" (graphs every runtime runs)."""
        return ENGINE_TARGET if self.engine_quantizer is not None and (for_engines or not self.onnx) else ""

    def quantizer_for(self, target: str) -> str | None:
        """The quantizer making this precision's graphs for `target`."""
        return self.engine_quantizer if target == ENGINE_TARGET else self.quantizer

    def dtype(self) -> torch.dtype:
        """The torch dtype (imports torch)."""
        import torch

        return getattr(torch, self.torch_dtype)


# The export target of graphs made for TensorRT engines (their folder name's suffix), and the opset engines are
# built from: TensorRT-RTX 1.7's parser rejects opset 23's attention.
ENGINE_TARGET = "trt"
ENGINE_OPSET = 18
# int8 and fp8: zero-shot top-1 agreement with torch fp32 >= 0.99 and mean cosine >= 0.99 (issue #22), and cosine
# >= 0.99 for 99% of samples. A changed top-1 counts as agreeing when the reference itself scores the new class within
# 0.001 (in cosine) of its top class: a near-tie that int8's resolution (1/255 of a tensor's range) cannot be asked to
# keep. On the demo checkpoint's InternVL-G, 13 of the 200 probe images have such a near-tie, and every policy and
# calibration tried (README, Export) left its raw agreement between 0.980 and 0.990 at mean cosines >= 0.99998; the
# report records the raw agreement and the near-ties apart.
QUANTIZED_PARITY = ParityLimits(0.99, 0.99, 0.99, mean_cosine=0.99, tie_margin=0.001)

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
# int8: for ONNX Runtime, the opset-23 fp32 trace quantized by ONNX Runtime's own quantizer (static, QDQ); for
# TensorRT, an opset-18 fp32 trace quantized by NVIDIA Model Optimizer (symmetric Q/DQ).
PRECISIONS.add("int8", PrecisionSpec(
    "int8", "float32", trace_in="fp32", opset=23, engine=True, parity=QUANTIZED_PARITY, eager=False,
    quantizer="zsbench.export.quantize.int8:QUANTIZER",
    engine_quantizer="zsbench.export.quantize.modelopt_qdq:QUANTIZER",
    note="23 for int8 (quantized from the fp32 graph; 18 for the graphs engines are built from)",
))
# fp8 (e4m3): only for TensorRT engines (SM 8.9 and 12.x have FP8 units); ONNX Runtime runs its Q/DQ graphs on a CPU
# for the parity check alone.
PRECISIONS.add("fp8", PrecisionSpec(
    "fp8", "float32", trace_in="fp32", opset=ENGINE_OPSET, engine=True, parity=QUANTIZED_PARITY, eager=False, onnx=False,
    engine_quantizer="zsbench.export.quantize.modelopt_qdq:QUANTIZER", note="18 for fp8 (what TensorRT builds from)",
    min_compute_capability="8.9",  # TensorRT-RTX 1.7 refuses fp8 for 8.6 and older ("HW-specific datatypes: fp8_e4m3")
))


def precision_names() -> tuple[str, ...]:
    """Every precision, in registration order (fp32 first)."""
    return tuple(PRECISIONS.names(sort=False))


def eager_precisions() -> tuple[str, ...]:
    """The precisions the torch backend runs."""
    return tuple(name for name in precision_names() if PRECISIONS.get(name).eager)


def export_precisions() -> tuple[str, ...]:
    """The precisions exported graphs come in (`zsbench export --precision`)."""
    return tuple(name for name in precision_names() if PRECISIONS.get(name).graphs)


def graph_precisions() -> tuple[str, ...]:
    """The precisions whose exported graphs ONNX Runtime runs (``--backend onnx``)."""
    return tuple(name for name in export_precisions() if PRECISIONS.get(name).onnx)


def quantized_precisions() -> tuple[str, ...]:
    """The precisions whose graphs are quantized from an fp32 trace."""
    return tuple(name for name in precision_names() if PRECISIONS.get(name).quantized)


def engine_precisions() -> tuple[str, ...]:
    """The precisions TensorRT engines are built from."""
    return tuple(name for name in precision_names() if PRECISIONS.get(name).engine)
