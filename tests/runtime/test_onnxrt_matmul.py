"""ONNX Runtime's matrix-multiply rate per precision: the graphs it times compute the product they claim to."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="needs the onnx extra: pip install 'zsbench[onnx]'")

from zsbench.runtime.onnxrt import import_onnxruntime  # noqa: E402
from zsbench.runtime.onnxrt_matmul import _graph, onnxruntime_matmul_rate  # noqa: E402


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_timed_graph_is_the_product_in_that_precision(precision: str) -> None:
    import onnx
    from onnx import numpy_helper

    serialized, feed = _graph(precision, 32)  # type: ignore[arg-type]
    model = onnx.load_from_string(serialized)
    weight = numpy_helper.to_array(model.graph.initializer[0])
    (result,) = import_onnxruntime().InferenceSession(serialized, providers=["CPUExecutionProvider"]).run(None, feed)
    if precision == "int8":
        assert feed["a"].dtype == np.uint8 and weight.dtype == np.int8 and result.dtype == np.int32
        np.testing.assert_array_equal(result, feed["a"].astype(np.int64) @ weight.astype(np.int64))
    else:
        np.testing.assert_allclose(result, feed["a"] @ weight, rtol=1e-4, atol=1e-3)
    assert onnxruntime_matmul_rate(precision, threads=1, size=64, min_seconds=0.01) > 0  # type: ignore[arg-type]
