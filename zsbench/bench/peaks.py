"""The peak rate each `zsbench bench` row is a fraction of: a matrix multiply measured in the row's own
runtime and precision, on its device, in the same run.

A row's "% of peak" means something only against the arithmetic the row itself runs: torch rows
against `F.linear` in their dtype (the layout of every `nn.Linear`: on a CPU without fp16 units
`torch.mm` of two row-major fp16 matrices takes a path 20x slower than the one `nn.Linear` takes),
ONNX Runtime rows against a one-MatMul graph in their dtype under
the very session options the encoders open with (on a CPU without half-precision units ONNX Runtime
runs fp16 through casts to fp32, and its fp16 MatMul measures exactly that). A fraction above 1 is
therefore a bug (a FLOP count or a peak measured wrong), never a number to print.

`PEAKS` is keyed by (backend, precision); a row without an entry gets no fraction. To add a
precision, register the function that measures its arithmetic here: torch bf16 rows (bf16 autocast
on a CPU with native bf16) against `F.linear` in bf16, ONNX Runtime int8 rows against the uint8 x
int8 `MatMulInteger` their quantized MatMuls run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from zsbench.bench.timing import time_repeatedly

if TYPE_CHECKING:
    import torch

# Each peak is the best of PEAK_ROUNDS measurements of PEAK_SECONDS / PEAK_ROUNDS (after warm-up calls), as each
# row keeps its best round: a slow spell of a shared machine must not lower the peak below what a row reaches.
PEAK_SECONDS = 0.6
PEAK_ROUNDS = 3


@dataclass(frozen=True)
class Peak:
    """A measured matrix-multiply rate and what measured it (recorded beside each row)."""

    flops_per_second: float
    measured_by: str


PeakMeasure = Callable[["torch.device"], Peak]


def matrix_size(device: torch.device) -> int:
    """The square matrices' size: large enough to keep the device busy, small enough to measure in a fraction of a second."""
    return 4096 if device.type == "cuda" else 1024


def best_rate(step: Callable[[], object], device: torch.device, flops: float) -> float:
    """FLOP/s of `step` (`flops` each call): the best of `PEAK_ROUNDS` timed rounds, after two warm-up calls."""
    rounds = [time_repeatedly(step, device, PEAK_SECONDS / PEAK_ROUNDS, warmup=0 if index else 2) for index in range(PEAK_ROUNDS)]
    return max(flops * runs / seconds for seconds, runs in rounds)


def torch_linear_peak(precision: str, device: torch.device) -> Peak:
    """`F.linear` (input @ weight.T, as every `nn.Linear`) of square matrices in `precision` on `device`
    (torch's intra-op threads on a CPU)."""
    import torch
    import torch.nn.functional as F

    from zsbench.precisions import PRECISIONS

    size = matrix_size(device)
    dtype = PRECISIONS.get(precision).dtype()
    x = torch.randn(size, size, device=device).to(dtype)
    weight = torch.randn(size, size, device=device).to(dtype)
    with torch.inference_mode():
        rate = best_rate(lambda: F.linear(x, weight), device, 2 * size**3)
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    return Peak(rate, f"torch {torch.__version__} linear {precision} {size}x{size} on {device}{threads}")


# The matrix multiply each ONNX Runtime row's graphs run: MatMul in the graph's float type, or for int8 graphs the
# product their QDQ MatMuls are fused into (`MatMulIntegerToFloat`): uint8 activations x int8 weights with int32
# accumulation, `MatMulInteger` (int8 x int8 ran 17x slower in ONNX Runtime 1.32: its fast kernels are u8 x s8, which is
# why int8 graphs quantize activations to uint8). (op, input type, weight type, output type).
_ONNX_PRODUCTS = {
    "fp32": ("MatMul", "FLOAT", "FLOAT", "FLOAT"),
    "fp16": ("MatMul", "FLOAT16", "FLOAT16", "FLOAT16"),
    "int8": ("MatMulInteger", "UINT8", "INT8", "INT32"),
}


def onnx_matmul_peak(precision: str, device: torch.device) -> Peak:
    """A one-node ONNX graph (input x weight, both square; `_ONNX_PRODUCTS[precision]`) in ONNX Runtime with the
    providers and session options `--backend onnx` uses on `device`; inputs and outputs bound on the device. Rates
    count 2 n^3 operations per product, as the FLOP counts they divide."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from zsbench.runtime.onnxrt import cpu_threads, import_onnxruntime, providers_for, session_options

    ort = import_onnxruntime()
    size = matrix_size(device)
    op, input_type, weight_type, output_type = _ONNX_PRODUCTS[precision]
    rng = np.random.default_rng(0)

    def values(onnx_type: str) -> np.ndarray:
        dtype = helper.tensor_dtype_to_np_dtype(getattr(TensorProto, onnx_type))
        if np.issubdtype(dtype, np.integer):
            limits = np.iinfo(dtype)
            return rng.integers(limits.min, limits.max, (size, size), dtype=dtype, endpoint=True)
        return rng.standard_normal((size, size)).astype(dtype)

    graph = helper.make_graph(
        [helper.make_node(op, ["x", "weight"], ["y"])], "matmul_peak",
        [helper.make_tensor_value_info("x", getattr(TensorProto, input_type), [size, size])],
        [helper.make_tensor_value_info("y", getattr(TensorProto, output_type), [size, size])],
        [numpy_helper.from_array(values(weight_type), "weight")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    threads = cpu_threads(device)
    session = ort.InferenceSession(model.SerializeToString(), session_options(threads), providers=providers_for(device))
    index = device.index or 0
    x = ort.OrtValue.ortvalue_from_numpy(values(input_type), device.type, index)
    binding = session.io_binding()
    binding.bind_ortvalue_input("x", x)
    binding.bind_output("y", device.type, index)
    rate = best_rate(lambda: session.run_with_iobinding(binding), device, 2 * size**3)
    shown_threads = f", {threads} threads" if threads else ""
    return Peak(rate, f"onnxruntime {ort.__version__} {op} {precision} {size}x{size} ({session.get_providers()[0]}{shown_threads})")


PEAKS: dict[tuple[str, str], PeakMeasure] = {
    ("torch", "fp32"): partial(torch_linear_peak, "fp32"),
    ("torch", "fp16"): partial(torch_linear_peak, "fp16"),
    ("torch", "bf16"): partial(torch_linear_peak, "bf16"),
    ("onnx", "fp32"): partial(onnx_matmul_peak, "fp32"),
    ("onnx", "fp16"): partial(onnx_matmul_peak, "fp16"),
    ("onnx", "int8"): partial(onnx_matmul_peak, "int8"),
    # Engines are strongly typed FP16 on the GPU: their GEMMs are the fp16 tensor-core arithmetic that
    # cuBLAS's fp16 GEMM (F.linear) measures on the same card, without building an engine for it.
    ("trt", "fp16"): partial(torch_linear_peak, "fp16"),
}


class PeakRates:
    """The peaks of one bench run: each (backend, precision) measured once, on first use, on `device`."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._measured: dict[tuple[str, str], Peak | None] = {}

    def get(self, backend: str, precision: str) -> Peak | None:
        """The peak of rows of `backend` in `precision`; None when `PEAKS` has no measure for them."""
        key = (backend, precision)
        if key not in self._measured:
            measure = PEAKS.get(key)
            self._measured[key] = measure(self.device) if measure is not None else None
        return self._measured[key]
