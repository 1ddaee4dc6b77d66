"""int8 exports of the demo checkpoint (InternVL-C and -G) with ONNX Runtime's quantizer, behind the int8 gate.

Every test quantizes the real trained demo graphs for real, through `zsbench export`'s pipeline
(`export_model`) or, where a policy other than the family's is the point, through the same
`quantize_graphs` and parity check the pipeline runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
import torch

from tests.conftest import DEMO_CHECKPOINT
from tests.export.conftest import export_tiny
from zsbench.backends import BackendOptions, ModelRef, load_backend
from zsbench.errors import ExportError, ParityError
from zsbench.export import ExportConfig, ExportResult, export_model
from zsbench.export.checking import compute_reference, onnx_parity, text_padding
from zsbench.export.config import CalibrationConfig
from zsbench.export.parity import ParityThresholds
from zsbench.export.probes import ProbeConfig, build_probes
from zsbench.export.quantize.calibration import calibration_set, feeds_digest
from zsbench.export.quantize.graphs import failure_advice, quantize_graphs
from zsbench.export.quantize.int8 import QUANTIZER
from zsbench.models.export_spec import PrecisionPolicy, Quantization
from zsbench.models.families import export_spec, get_family

GRAPHS = {"vision": "pixel_values", "text": "input_ids"}
CPU = torch.device("cpu")


def _ref(head: str) -> ModelRef:
    return ModelRef("internvl", f"internvl_{head}_retrieval_hf", str(DEMO_CHECKPOINT))


def _inputs(ref: ModelRef) -> tuple:
    """The model's transform, tokenizer and text padding, as the export pipeline makes them."""
    family = get_family(ref.model_type)
    loaded = ref.load(CPU, "fp32")
    spec = export_spec(ref.model_type, ref.model, "test")
    return (family.transform(loaded.preprocess, family.default_task(ref.model)), loaded.tokenizer,
            text_padding(spec, family.record(ref).text))


@pytest.fixture(scope="module", params=["c", "g"])
def int8_export(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    out = tmp_path_factory.mktemp(f"int8-{request.param}") / "export"
    return export_model(ExportConfig(_ref(request.param), out=out, precision="int8", device="cpu"))


@pytest.fixture(scope="module")
def fp32_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo InternVL-C's fp32 graphs at opset 23: what the int8 export quantizes."""
    return export_tiny("internvl_c_retrieval_hf", DEMO_CHECKPOINT, tmp_path_factory.mktemp("fp32") / "export", "fp32").folder


def _dequantized_consumers(path: Path) -> set[str]:
    graph = onnx.load(str(path), load_external_data=False).graph
    dequantized = {out for node in graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    return {node.name for node in graph.node if node.op_type == "MatMul" and set(node.input) & dequantized}


def test_the_int8_export_passes_its_gate_with_the_int8_thresholds_recorded(int8_export: ExportResult) -> None:
    report = json.loads((int8_export.folder / "parity.json").read_text())
    assert report["passed"] is True and int8_export.manifest.precision == "int8"
    assert report["thresholds"]["top1_agreement"] == 0.99 and report["thresholds"]["mean_cosine"] == 0.99
    for graph in report["graphs"].values():
        assert graph["top1_agreement_ties_forgiven"] >= 0.99
        assert graph["graph"] == "zero_shot" or graph["mean_cosine"] >= 0.99
    # The fp32 trace the graphs were quantized from is not published.
    assert sorted(p.name for p in int8_export.folder.iterdir()) == sorted(
        ["manifest.json", "parity.json", "vision.onnx", "vision.onnx.data", "text.onnx", "text.onnx.data", ".zsbench-digests.json"])


def test_the_int8_graphs_quantize_the_matmuls_and_keep_the_embedding_heads_in_fp32(int8_export: ExportResult) -> None:
    quantization = int8_export.manifest.quantization
    for graph in GRAPHS:
        quantized = _dequantized_consumers(int8_export.folder / f"{graph}.onnx")
        kept = set(quantization[graph]["kept_fp32"])
        assert quantized and kept and not quantized & kept
        assert quantized <= set(quantization[graph]["quantized"])
        weights = onnx.load(str(int8_export.folder / f"{graph}.onnx"), load_external_data=False).graph.initializer
        assert any(w.data_type == onnx.TensorProto.INT8 for w in weights)  # int8 weights, as external data
    reasons = {graph: set(quantization[graph]["kept_fp32"].values()) for graph in GRAPHS}
    assert "final text projection" in reasons["text"]
    policy = int8_export.manifest.graph_policy["vision"]
    assert policy[0].startswith("quantized by onnxruntime") and any(line.startswith("calibrated on synthetic") for line in policy)


def test_the_manifest_records_the_calibration_set_by_the_digest_of_its_exact_feeds(int8_export: ExportResult) -> None:
    transform, tokenizer, padding = _inputs(int8_export.manifest.model_ref())
    probes = build_probes(transform, tokenizer, ProbeConfig(), padding)
    expected = calibration_set(transform, tokenizer, padding, CalibrationConfig(), probes)
    for graph, input_name in GRAPHS.items():
        record = int8_export.manifest.calibration()[graph]
        assert record["samples"] == CalibrationConfig().num_samples
        assert record["sha256"] == feeds_digest(expected.feeds(graph, input_name))
    # ... and the parity probes are none of its images and prompts.
    probe_rows = {row.tobytes() for row in probes.pixels.numpy()}
    assert not probe_rows & {row.tobytes() for batch in expected.batches["vision"] for row in batch}
    assert not set(probes.texts) & set(expected.texts)


def test_eval_runs_the_int8_graphs_and_records_precision_and_calibration(int8_export: ExportResult) -> None:
    ref = int8_export.manifest.model_ref()
    loaded = load_backend("onnx", ref, CPU, "int8", BackendOptions(export_root=int8_export.folder))
    described = loaded.encoder.describe()
    assert described["precision"] == "int8" and described["calibration"] == int8_export.manifest.calibration()
    pixels = torch.rand(2, 3, 64, 64)
    assert loaded.encoder.encode_image(pixels).shape[0] == 2


def test_a_tampered_int8_graph_is_refused_like_any_other(int8_export: ExportResult, tmp_path: Path) -> None:
    copy = tmp_path / "export"
    shutil.copytree(int8_export.folder, copy)
    data = copy / "vision.onnx.data"
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    data.write_bytes(bytes(blob))
    with pytest.raises(ExportError, match=r"vision\.onnx\.data is not the file\(s\) its manifest recorded"):
        load_backend("onnx", int8_export.manifest.model_ref(), CPU, "int8", BackendOptions(export_root=copy))


def test_quantizing_everything_fails_the_int8_gate_and_names_the_noisiest_nodes(fp32_trace: Path, tmp_path: Path) -> None:
    ref = _ref("c")
    spec = export_spec(ref.model_type, ref.model, "test")
    family = get_family(ref.model_type)
    source = tmp_path / "trace"
    shutil.copytree(fp32_trace, source)
    traced = {graph: source / f"{graph}.onnx" for graph in GRAPHS}
    out = tmp_path / "int8-everything"
    out.mkdir()
    transform, tokenizer, padding = _inputs(ref)
    probes, reference = compute_reference(lambda: ref.load(CPU, "fp32"), family, ref.model, padding, ProbeConfig(), CPU, "fp32")
    calibration = calibration_set(transform, tokenizer, padding, CalibrationConfig(num_samples=64), probes)
    everything = PrecisionPolicy(quantize=Quantization(op_types=(), fp32_outputs=()))  # no policy: every op type, rounded results
    graphs, _ = quantize_graphs(QUANTIZER, traced, out, spec, everything, "int8", calibration, lambda message: None)
    report = onnx_parity(probes, reference, {name: out / item.file for name, item in graphs.items()}, out, CPU, "int8",
                         ProbeConfig(), ParityThresholds.for_precision("int8"), "fp32")
    assert not report.passed
    advice = failure_advice(report, traced, out, spec, calibration)
    failing = [graph.graph for graph in report.graphs if graph.status == "failed" and graph.graph in GRAPHS]
    assert failing and all(f"{graph}: the 5 quantized nodes with the most quantization noise" in advice for graph in failing)
    assert "--keep_fp32 '" in advice
    with pytest.raises(ParityError):
        report.raise_if_failed()


def test_keep_fp32_keeps_the_matching_nodes_and_a_pattern_matching_nothing_stops_before_quantizing(tmp_path: Path) -> None:
    config = ExportConfig(_ref("c"), out=tmp_path / "kept", precision="int8", device="cpu", keep_fp32=("*layers.0.mlp.*",),
                          calibration=CalibrationConfig(num_samples=32))
    result = export_model(config)
    kept = {node for node, why in result.manifest.quantization["text"]["kept_fp32"].items() if why == "--keep_fp32 *layers.0.mlp.*"}
    assert len(kept) == 3 and not kept & _dequantized_consumers(result.folder / "text.onnx")
    with pytest.raises(ExportError, match=r"'--keep_fp32 \*no_such_module\*' matches no quantized node"):
        export_model(ExportConfig(_ref("c"), out=tmp_path / "typo", precision="int8", device="cpu", keep_fp32=("*no_such_module*",)))
    assert not (tmp_path / "typo").exists()


def test_calibration_options_are_refused_for_a_precision_that_is_not_quantized(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="--keep_fp32 apply to quantized graphs"):
        export_model(ExportConfig(_ref("c"), out=tmp_path / "x", precision="fp32", device="cpu", keep_fp32=("*",)))
    with pytest.raises(ExportError, match="--calibration_dataset NAME and --calibration_root DIR go together"):
        export_model(ExportConfig(_ref("c"), out=tmp_path / "x", precision="int8", device="cpu",
                                  calibration=CalibrationConfig(dataset="wds/shapes_classification")))
    missing = tmp_path / "no-data"
    with pytest.raises(ExportError, match=r"--calibration_root .*no-data is not a folder"):
        export_model(ExportConfig(_ref("c"), out=tmp_path / "x", precision="int8", device="cpu",
                                  calibration=CalibrationConfig(dataset="wds/shapes_classification", root=missing)))
    assert not (tmp_path / "x").exists()  # refused before anything was traced or written
