"""ONNX export of the tiny InternVL-C and InternVL-G: graph structure, fp16 casts, manifest, parity."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from zsbench.export import ExportResult, ParityReport, load_export_manifest
from zsbench.models import load_clip

from .conftest import MODELS, export_tiny

CASES = [(head, precision) for head in ("c", "g") for precision in ("fp32", "fp16")]


@pytest.mark.parametrize(("head", "precision"), CASES)
def test_export_passes_onnx_runtime_parity_at_default_thresholds(exports: dict, head: str, precision: str) -> None:
    result: ExportResult = exports[(head, precision)]
    report = ParityReport.from_dict(json.loads((result.folder / "parity.json").read_text()))
    assert report and report.passed and report.status == "passed"
    assert {g.graph for g in report.graphs} == {"vision", "text", "zero_shot"}
    expected = {"fp32": (0.99999, 1.0), "fp16": (0.999, 0.99)}[precision]
    assert (report.thresholds.cosine, report.thresholds.cosine_fraction) == expected
    assert report.thresholds.top1_agreement == 0.995
    for name in ("vision", "text"):
        graph = report.graph(name)
        assert graph.passed and graph.samples >= 200
        assert graph.top1_agreement is not None and graph.top1_agreement >= 0.995
        assert graph.min_cosine is not None and graph.min_cosine >= (0.99999 if precision == "fp32" else 0.99)
    assert "TF32 off" in report.reference


@pytest.mark.parametrize(("head", "precision"), CASES)
def test_graphs_pass_checker_with_external_weights_and_dynamic_axes(exports: dict, head: str, precision: str) -> None:
    folder = exports[(head, precision)].folder
    manifest = load_export_manifest(folder)
    for graph, io in (("vision", ("pixel_values", "image_embeds")), ("text", ("input_ids", "text_embeds"))):
        path = folder / f"{graph}.onnx"
        onnx.checker.check_model(str(path), full_check=True)
        proto = onnx.load(str(path), load_external_data=False)
        big = [t.name for t in proto.graph.initializer if len(t.raw_data) > 1024]
        assert not big, f"weights inlined in {graph}.onnx: {big[:3]}"
        assert (folder / f"{graph}.onnx.data").stat().st_size >= manifest.graphs[graph].weight_bytes * 0.9
        spec = manifest.graphs[graph]
        assert (spec.inputs[0].name, spec.outputs[0].name) == io
        assert spec.outputs[0].shape == ("batch", 32)
        assert spec.outputs[0].dtype == {"fp32": "float32", "fp16": "float16"}[precision]
    assert manifest.graphs["vision"].inputs[0].shape == ("batch", 3, 32, 32)
    assert manifest.graphs["vision"].inputs[0].dtype == "float32"  # the graph casts pixels itself
    assert manifest.graphs["text"].inputs[0].shape == ("batch", "length")
    assert manifest.graphs["text"].inputs[0].dtype == "int64"


def test_manifest_records_model_checkpoint_preprocess_and_versions(exports: dict, tiny_hf_folder: Path) -> None:
    manifest = load_export_manifest(exports[("g", "fp16")].folder)
    assert (manifest.model_type, manifest.model_name, manifest.precision, manifest.opset) == ("internvl", MODELS["g"], "fp16", 18)
    assert manifest.pretrained == str(tiny_hf_folder.resolve())
    files = {Path(f.path).name for f in manifest.checkpoint.files}
    assert {"config.json", "model.safetensors", "tokenizer.model"} <= files
    assert len(manifest.checkpoint.digest) == 64 and manifest.checkpoint.config_sha256
    # The resize mode is the run's task's: the export records both (classification crops, retrieval squashes).
    assert manifest.preprocess == {"image_size": 32, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                   "interpolation": "bicubic",
                                   "resize_mode": {"zeroshot_classification": "shortest", "zeroshot_retrieval": "squash"}}
    assert manifest.graph == "internvl_g_hf"
    assert manifest.text["context_length"] == 80 and manifest.text["pad_id"] == 0
    assert manifest.config["vision_config"]["hidden_size"] == 48
    assert manifest.exporter["name"] == "torch.onnx.export(dynamo=True)"
    assert manifest.versions["torch"] and manifest.versions["onnx"] and manifest.versions["onnxruntime"]
    assert manifest.parity_passed
    # Same-checkpoint exports of C and G share the fingerprint; precision is part of the identity.
    other = load_export_manifest(exports[("c", "fp16")].folder)
    assert other.checkpoint.digest == manifest.checkpoint.digest


def _scopes(node: onnx.NodeProto) -> list[str]:
    props = {p.key: p.value for p in node.metadata_props}
    return ast.literal_eval(props.get("pkg.torch.onnx.name_scopes", "[]"))


def _producers(proto: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in proto.graph.node for out in node.output}


@pytest.mark.parametrize("head", ["c", "g"])
def test_fp16_graph_computes_in_fp32_where_the_original_does(exports: dict, head: str) -> None:
    folder = exports[(head, "fp16")].folder
    fp32 = onnx.TensorProto.FLOAT
    for graph in ("vision", "text"):
        proto = onnx.load(str(folder / f"{graph}.onnx"), load_external_data=False)
        producers = _producers(proto)
        consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in proto.graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node)

        def cast_to(name: str) -> int | None:
            node = producers.get(name)
            return node.attribute[0].i if node is not None and node.op_type == "Cast" else None

        weights = [t for t in proto.graph.initializer if len(t.dims) == 2]
        assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
        qllama_softmax = [n for n in proto.graph.node if n.op_type == "Softmax" and any("qllama" in s for s in _scopes(n))]
        expected = {"text": 3, "vision": 3 + 2 if head == "g" else 0}[graph]
        assert len(qllama_softmax) == expected
        for node in qllama_softmax:
            assert cast_to(node.input[0]) == fp32
            assert [c.op_type for c in consumers[node.output[0]]] == ["Cast"]
        # RMSNorm statistics: every Pow (x^2 of the variance) reads an fp32 cast.
        pows = [n for n in proto.graph.node if n.op_type == "Pow"]
        assert pows and all(cast_to(n.input[0]) == fp32 for n in pows)
        # Reductions over fp16 data accumulate in fp32 (pooling mean, InternVL-G's L2 norms).
        for node in proto.graph.node:
            if node.op_type in ("ReduceMean", "ReduceL2"):
                assert cast_to(node.input[0]) == fp32 or producers[node.input[0]].op_type in ("Pow",), node.name
        if graph == "vision":
            norms = [n for n in proto.graph.node if n.op_type == "LayerNormalization"]
            assert len(norms) == (6 if head == "g" else 3)
            assert all({a.name: a.i for a in n.attribute if a.name == "stash_type"}.get("stash_type", 1) == 1 for n in norms)
    policy = load_export_manifest(folder).graph_policy
    assert any("QLLaMA attention softmax in fp32 (3 nodes)" in line for line in policy["text"])
    assert any("RMSNorm" in line for line in policy["vision"])


def _fp32_scale_muls(path: Path) -> int:
    """Mul nodes scaling a Cast-to-fp32 activation by an fp32 per-channel vector (layer scale in fp32)."""
    proto = onnx.load(str(path), load_external_data=False)
    producers = _producers(proto)
    vectors = {t.name for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 1}
    count = 0
    for node in proto.graph.node:
        if node.op_type == "Mul" and any(i in vectors for i in node.input):
            other = [i for i in node.input if i not in vectors]
            if other and other[0] in producers and producers[other[0]].op_type == "Cast":
                count += 1
    return count


def test_pth_fp16_export_keeps_layer_scale_in_fp32(exports: dict, tmp_path: Path, demo_pth_file: Path) -> None:
    # The demo's trained weights: random tiny weights leave zero-shot margins of 1e-4, below fp16 noise.
    config = demo_pth_file.parent / "demo_config.json"
    result = export_tiny("internvl_c_classification", demo_pth_file, tmp_path / "pth16", "fp16", model_config=config)
    assert result.parity
    assert any("layer scale" in line for line in result.manifest.graph_policy["vision"])
    layers = json.loads(config.read_text())["vision_config"]["num_hidden_layers"]
    assert _fp32_scale_muls(result.folder / "vision.onnx") == 2 * layers  # ls1 and ls2, as LayerScale(force_fp32)
    assert _fp32_scale_muls(exports[("c", "fp16")].folder / "vision.onnx") == 0  # HF multiplies in fp16


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_text_graph_handles_padding_and_any_batch(exports: dict, tiny_hf_folder: Path, precision: str) -> None:
    folder = exports[("g", precision)].folder
    model, _, tokenizer = load_clip("internvl", MODELS["g"], tiny_hf_folder)
    session = ort.InferenceSession(str(folder / "text.onnx"), providers=["CPUExecutionProvider"])
    texts = ["a photo of a dog.", "a red circle left of a large blue square, with 日本 and ñ!", "cat"]
    short, padded = tokenizer(texts), tokenizer(texts, pad_to=80)
    (out_short,) = session.run(None, {"input_ids": short.numpy()})
    (out_padded,) = session.run(None, {"input_ids": padded.numpy()})
    (out_single,) = session.run(None, {"input_ids": tokenizer(texts[:1]).numpy()})
    np.testing.assert_allclose(out_short.astype(np.float32), out_padded.astype(np.float32), atol=2e-3 if precision == "fp16" else 1e-5)
    np.testing.assert_allclose(out_single[0].astype(np.float32), out_short[0].astype(np.float32), atol=2e-3 if precision == "fp16" else 1e-5)
    with torch.no_grad():
        reference = model.encode_text(padded).numpy()
    cosine = (reference * out_padded).sum(-1) / np.linalg.norm(reference, axis=-1) / np.linalg.norm(out_padded.astype(np.float32), axis=-1)
    assert cosine.min() > 0.999


def test_opset_18_rmsnorm_and_gelu_are_written_so_onnxruntime_fuses_them(exports: dict, tmp_path: Path, tiny_hf_folder: Path) -> None:
    # fp16 graphs are opset 18 (TensorRT); fp32 graphs are opset 18 when asked, for onnxruntime < 1.23.
    fp32 = export_tiny(MODELS["c"], tiny_hf_folder, tmp_path / "fp32-opset18", "fp32", opset=18).folder
    for folder in (exports[("c", "fp16")].folder, fp32):
        assert load_export_manifest(folder).opset == 18
        assert not [node for node in onnx.load(str(folder / "vision.onnx"), load_external_data=False).graph.node if node.op_type == "Reciprocal"]
        policy = load_export_manifest(folder).graph_policy["vision"]
        assert any(line.startswith("RMSNorm written as") for line in policy) and any(line.startswith("exact GELU") for line in policy)
    # ONNX Runtime's CPU provider fuses these in fp32 only; GPU providers fuse the fp16 patterns.
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(fp32 / "vision.onnx"), options, providers=["CPUExecutionProvider"])
    fused = {node.op_type for node in onnx.load(str(tmp_path / "optimized.onnx"), load_external_data=False).graph.node}
    assert "SimplifiedLayerNormalization" in fused and "Erf" not in fused


def _nodes(path: Path) -> list[onnx.NodeProto]:
    return list(onnx.load(str(path), load_external_data=False).graph.node)


@pytest.mark.parametrize("head", ["c", "g"])
def test_fp32_graphs_use_opset_23_attention_and_rope_without_head_transposes(exports: dict, tiny_hf_folder: Path, head: str) -> None:
    result = exports[(head, "fp32")]
    assert result.manifest.opset == 23 and exports[(head, "fp16")].manifest.opset == 18
    layers = load_clip("internvl", MODELS[head], tiny_hf_folder)[0].config.text.num_hidden_layers
    for graph in ("vision", "text"):
        nodes = _nodes(result.folder / f"{graph}.onnx")
        producers = {output: node for node in nodes for output in node.output}
        attentions = [node for node in nodes if node.op_type == "Attention"]
        assert attentions
        for attention in attentions:
            assert {a.name for a in attention.attribute} >= {"q_num_heads", "kv_num_heads"}
            assert all(producers[name].op_type != "Transpose" for name in attention.input[:3] if name in producers)
        ropes = [node for node in nodes if node.op_type == "RotaryEmbedding"]
        # q and k of every QLLaMA layer: the text path, and InternVL-G's query path in the image graph.
        assert len(ropes) == (2 * layers if graph == "text" or head == "g" else 0)
        assert not [node for node in nodes if node.op_type == "Neg"]  # rotate_half's negation is inside RotaryEmbedding
    policy = result.manifest.graph_policy["text"]
    assert f"RoPE (x * cos + rotate_half(x) * sin) as one RotaryEmbedding ({2 * layers} nodes)" in policy
    # The fp16 (opset 18) graphs keep the decomposed RoPE: TensorRT's parser reads them.
    assert not [node for node in _nodes(exports[(head, "fp16")].folder / "text.onnx") if node.op_type == "RotaryEmbedding"]


def test_exports_written_before_graph_names_were_recorded_still_read_and_run(exports: dict, copy_export, tiny_hf_folder: Path) -> None:
    """A format-4 manifest (before graph names were recorded, like every export made until then) reads, its graph
    name being its family's for its model name, so existing exports keep being found and shared."""
    from zsbench.backends import BackendOptions, load_backend
    from zsbench.models import ModelRef

    folder = copy_export(exports[("c", "fp32")], "internvl_c_hf-InternVL-tiny-fp32")
    data = json.loads((folder / "manifest.json").read_text())
    del data["graph"]
    (folder / "manifest.json").write_text(json.dumps({**data, "format": "zsbench-onnx-export/4"}))
    manifest = load_export_manifest(folder)
    assert (manifest.graph, manifest.format) == ("internvl_c_hf", "zsbench-onnx-export/6")
    # The classification name finds the retrieval name's export by its identity, with the parity gate on.
    ref = ModelRef("internvl", "internvl_c_classification_hf", str(tiny_hf_folder))
    loaded = load_backend("onnx", ref, torch.device("cpu"), "fp32", BackendOptions(export_root=folder.parent))
    assert loaded.encoder.describe()["artifact"] == str(folder)
