"""NVIDIA Model Optimizer's FP8 / INT8 Q/DQ graphs of the demo's encoders, made on a CPU, built ahead of time by TensorRT-RTX.

Runs only where `zsbench[fp8]` is installed (an environment of its own: Model Optimizer's [onnx]
extra pins onnx and onnxruntime-gpu versions that clash with zsbench[onnx]); skipped elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

pytest.importorskip(
    "modelopt.onnx.quantization",
    reason="NVIDIA Model Optimizer is not installed: pip install 'zsbench[fp8]' in an environment of its own "
           "(its [onnx] extra pins onnx~=1.21 and onnxruntime-gpu~=1.24, which clash with zsbench[onnx])",
)

from tests.conftest import DEMO_CHECKPOINT  # noqa: E402
from zsbench.export.onnx_export import FP16_OPSET, export_graphs  # noqa: E402
from zsbench.export.probes import ProbeConfig, build_probes  # noqa: E402
from zsbench.export.quantize.calibration import CalibrationConfig, synthetic_calibration  # noqa: E402
from zsbench.export.quantize.int8 import dequantized_consumers  # noqa: E402
from zsbench.export.quantize.modelopt_qdq import modelopt_quantize_graph  # noqa: E402
from zsbench.export.quantize.policy import resolve_policy  # noqa: E402
from zsbench.models import load_clip  # noqa: E402
from zsbench.models.families.internvl_int8 import INTERNVL_INT8_POLICY  # noqa: E402

INPUTS = {"vision": ("pixel_values", (3, 64, 64)), "text": ("input_ids", (20,))}


@pytest.fixture(scope="module")
def qdq_graphs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    model, transform, tokenizer = load_clip("internvl", "internvl_c_retrieval_hf", DEMO_CHECKPOINT)
    root = tmp_path_factory.mktemp("modelopt")
    fp32 = root / "fp32"
    fp32.mkdir()
    export_graphs(model, fp32, FP16_OPSET, "fp32", torch.device("cpu"), lambda message: None)
    probes = build_probes(transform, tokenizer, ProbeConfig(num_images=8, num_classes=4, num_templates=2))
    calibration = synthetic_calibration(transform, tokenizer, CalibrationConfig(num_samples=32), probes)
    graphs = {}
    for mode in ("fp8", "int8"):
        (root / mode).mkdir()
        for graph, (name, _) in INPUTS.items():
            graphs[(mode, graph)] = modelopt_quantize_graph(fp32 / f"{graph}.onnx", root / mode / f"{graph}.onnx",
                                                            {name: calibration.stacked(graph)}, mode, INTERNVL_INT8_POLICY,
                                                            calibration_name=calibration.name)
    return root, graphs


@pytest.mark.parametrize("mode", ["fp8", "int8"])
@pytest.mark.parametrize("graph", ["vision", "text"])
def test_qdq_nodes_sit_where_the_policy_says(qdq_graphs: tuple[Path, dict], mode: str, graph: str) -> None:
    root, graphs = qdq_graphs
    wanted = set(resolve_policy(root / "fp32" / f"{graph}.onnx", INTERNVL_INT8_POLICY).quantized)
    quantized = set(dequantized_consumers(root / mode / f"{graph}.onnx"))
    assert wanted <= quantized, wanted - quantized
    made = graphs[(mode, graph)]
    assert not set(made.kept_fp32) & quantized  # the pooling heads and the text projection stay unquantized
    assert made.kept_fp32 and made.quantize_linear_nodes >= len(wanted)
    assert (root / mode / f"{graph}.onnx.data").is_file()
    assert made.policy[0].startswith(f"{mode} Q/DQ (NVIDIA Model Optimizer")


@pytest.mark.parametrize("mode", ["fp8", "int8"])
def test_tensorrt_rtx_builds_them_ahead_of_time_for_fp8_targets(qdq_graphs: tuple[Path, dict], mode: str) -> None:
    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed: pip install 'zsbench[trt-rtx]'")
    os.environ["POLYGRAPHY_USE_TENSORRT_RTX"] = "1"
    import polygraphy.backend.trt as ptrt
    from polygraphy.backend.tensorrt_rtx import CreateConfigRTX

    root, _ = qdq_graphs
    for graph, (name, shape) in INPUTS.items():
        network = ptrt.NetworkFromOnnxPath(str(root / mode / f"{graph}.onnx"), strongly_typed=True)
        profile = ptrt.Profile().add(name, (1, *shape), (4, *shape), (8, *shape))
        engine = ptrt.EngineBytesFromNetwork(network, CreateConfigRTX(compute_capabilities=[(8, 9), (12, 0)], profiles=[profile]))()
        assert engine.nbytes > 0
