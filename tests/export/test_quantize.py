"""int8 quantization of the demo checkpoint's real graphs (C and G) with ONNX Runtime's quantizer, behind the int8 gate.

One fp32 export and one fp32 reference per head (module fixture); every test quantizes for real.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import DEMO_CHECKPOINT
from zsbench.errors import ExportError
from zsbench.export.checking import compute_reference, onnx_parity
from zsbench.export.onnx_export import export_graphs
from zsbench.export.parity import Embeddings, ParityReport, ParityThresholds
from zsbench.export.probes import ProbeConfig, ProbeSet
from zsbench.export.quantize.calibration import CalibrationConfig, CalibrationSet, feeds_digest, synthetic_calibration
from zsbench.export.quantize.int8 import QuantizedGraph, quantize_graph
from zsbench.export.quantize.node_report import node_error_report
from zsbench.models import load_clip
from zsbench.models.families.internvl_int8 import INTERNVL_INT8_POLICY
from zsbench.models.precision_policy import Int8Policy

INPUTS = {"vision": "pixel_values", "text": "input_ids"}


@dataclass(frozen=True)
class DemoGraphs:
    """The demo checkpoint's fp32 graphs of one head, its parity probes and fp32 reference, and a calibration set."""

    folder: Path
    probes: ProbeSet
    reference: Embeddings
    calibration: CalibrationSet


@pytest.fixture(scope="module", params=["c", "g"])
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> DemoGraphs:
    model, transform, tokenizer = load_clip("internvl", f"internvl_{request.param}_retrieval_hf", DEMO_CHECKPOINT)
    folder = tmp_path_factory.mktemp(f"demo-{request.param}-fp32")
    export_graphs(model, folder, 23, "fp32", torch.device("cpu"), lambda message: None)
    probes, reference = compute_reference(lambda: (model, transform, tokenizer), ProbeConfig(), torch.device("cpu"))
    return DemoGraphs(folder, probes, reference, synthetic_calibration(transform, tokenizer, CalibrationConfig(), probes))


def _quantize(demo: DemoGraphs, out: Path, policy: Int8Policy) -> tuple[dict[str, QuantizedGraph], ParityReport]:
    out.mkdir()
    graphs = {
        graph: quantize_graph(demo.folder / f"{graph}.onnx", out / f"{graph}.onnx", demo.calibration.feeds(graph, name), policy,
                              calibration_name=demo.calibration.name)
        for graph, name in INPUTS.items()
    }
    report = onnx_parity(demo.probes, demo.reference, {graph: out / f"{graph}.onnx" for graph in INPUTS}, out, torch.device("cpu"),
                         "int8", ProbeConfig(), ParityThresholds.for_precision("int8"))
    return graphs, report


def test_default_policy_passes_the_int8_gate_and_records_its_calibration(demo: DemoGraphs, tmp_path: Path) -> None:
    before = sorted(os.listdir(demo.folder))
    graphs, report = _quantize(demo, tmp_path / "int8", INTERNVL_INT8_POLICY)
    assert report, report.summary()
    for parity in report.graphs:
        assert parity.top1_agreement >= 0.99
        assert parity.graph == "zero_shot" or parity.mean_cosine >= 0.99
    # The source folder is left as it was (ONNX Runtime's shape-inferred copies are removed).
    assert sorted(os.listdir(demo.folder)) == before
    for graph, quantized in graphs.items():
        feeds = demo.calibration.feeds(graph, INPUTS[graph])
        assert quantized.calibration.sha256 == feeds_digest(feeds)
        assert quantized.calibration.samples == CalibrationConfig().num_samples
        # Weights are external data, and every quantized node is a MatMul outside the policy's fp32 rules.
        assert (tmp_path / "int8" / f"{graph}.onnx.data").is_file()
        kept = set(quantized.kept_fp32)
        assert quantized.quantized and not kept & set(quantized.quantized)
        assert any("calibrated on synthetic" in line for line in quantized.graph_policy())
    assert any("final text projection" in reason for reason in graphs["text"].kept_fp32.values())
    assert any("attention pooling" in reason for reason in graphs["vision"].kept_fp32.values())


def test_quantizing_everything_fails_the_gate_and_the_report_names_the_worst_nodes(demo: DemoGraphs, tmp_path: Path) -> None:
    graphs, report = _quantize(demo, tmp_path / "int8-all", Int8Policy.everything())
    assert not report and "top-1 agreement" in report.summary()
    failing = [parity.graph for parity in report.graphs if not parity.passed and parity.graph in INPUTS]
    assert failing
    graph = failing[0]
    feeds = demo.calibration.feeds(graph, INPUTS[graph])[:2]
    nodes = node_error_report(demo.folder / f"{graph}.onnx", tmp_path / "int8-all" / f"{graph}.onnx", feeds, graph)
    assert {node.node for node in nodes.nodes} == set(graphs[graph].quantized)
    noise = [node.own_db for node in nodes.nodes]
    assert noise == sorted(noise) and noise[0] < 40
    summary = nodes.summary(3)
    assert nodes.nodes[0].node in summary and f"--keep_fp32 '{nodes.nodes[0].keep_fp32_pattern}'" in summary


def test_keep_fp32_keeps_the_named_node_and_a_pattern_matching_nothing_is_refused(demo: DemoGraphs, tmp_path: Path) -> None:
    pattern = "*layers.0.mlp.*"  # one MLP's linear layers, in both heads' text graphs
    out = tmp_path / "kept"
    out.mkdir()
    feeds = demo.calibration.feeds("text", "input_ids")[:4]
    graph = quantize_graph(demo.folder / "text.onnx", out / "text.onnx", feeds, INTERNVL_INT8_POLICY.with_keep_fp32([pattern]),
                           calibration_name="test")
    kept = {node for node, reason in graph.kept_fp32.items() if reason == "--keep_fp32"}
    assert len(kept) == 3 and not kept & set(graph.quantized)
    with pytest.raises(ExportError, match="--keep_fp32 '\\*no_such_module\\*' matches no quantized node"):
        quantize_graph(demo.folder / "text.onnx", out / "other.onnx", feeds, INTERNVL_INT8_POLICY.with_keep_fp32(["*no_such_module*"]),
                       calibration_name="test")


def test_calibration_is_disjoint_from_the_parity_probes(demo: DemoGraphs) -> None:
    pixels = {row.tobytes() for row in demo.probes.pixels.numpy()}
    calibration = np.concatenate(demo.calibration.batches["vision"])
    assert len(calibration) == CalibrationConfig().num_samples
    assert not {row.tobytes() for row in calibration} & pixels
    assert not set(demo.calibration.texts) & set(demo.probes.texts)
