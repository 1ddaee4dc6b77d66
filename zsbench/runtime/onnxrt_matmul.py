"""The matrix-multiply rate of ONNX Runtime on this machine, per precision: what "% of peak" divides by.

One square product in a one-node graph, timed on the CPU provider with the threads the encoders
get: fp32 is `MatMul` on float32; int8 is `MatMulInteger` on uint8 activations x int8 weights
with int32 accumulation, the product an int8 QDQ graph's MatMuls run (ONNX Runtime fuses
DequantizeLinear -> MatMul into it, as `MatMulIntegerToFloat`). Rates count 2 n^3 operations
per product, like the FLOP counts they are compared with. (int8 x int8 `MatMulInteger` ran at
54 GOP/s here against 897 for uint8 x int8: ONNX Runtime's fast int8 kernels are u8 x s8, which is
why `Int8Settings` quantizes activations to uint8 by default.)
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np

from zsbench.runtime.onnxrt import import_onnxruntime

MatmulPrecision = Literal["fp32", "int8"]


def _graph(precision: MatmulPrecision, size: int) -> tuple[bytes, dict[str, np.ndarray]]:
    """A one-node graph a @ b (b a constant, as weights are) and its feed."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if precision == "int8":
        a = rng.integers(0, 256, (size, size), dtype=np.uint8)
        b = rng.integers(-128, 128, (size, size), dtype=np.int8)
        node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
        types = (TensorProto.UINT8, TensorProto.INT32)
    else:
        a = rng.standard_normal((size, size), dtype=np.float32)
        b = rng.standard_normal((size, size), dtype=np.float32)
        node = helper.make_node("MatMul", ["a", "b"], ["y"])
        types = (TensorProto.FLOAT, TensorProto.FLOAT)
    graph = helper.make_graph([node], "matmul", [helper.make_tensor_value_info("a", types[0], [size, size])],
                              [helper.make_tensor_value_info("y", types[1], [size, size])], [numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    onnx.checker.check_model(model)
    return model.SerializeToString(), {"a": a}


def onnxruntime_matmul_rate(precision: MatmulPrecision, threads: int, size: int = 1024, min_seconds: float = 0.5) -> float:
    """Operations per second (2 n^3 per product) of a square `size` matrix multiply in `precision`
    on ONNX Runtime's CPU provider with `threads` threads."""
    ort = import_onnxruntime()
    serialized, feed = _graph(precision, size)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(serialized, options, providers=["CPUExecutionProvider"])
    for _ in range(2):
        session.run(None, feed)
    runs, start = 0, time.perf_counter()
    while True:
        session.run(None, feed)
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and runs >= 3:
            return 2 * size**3 * runs / elapsed
