"""Issue 11, items 1-2: no graph or engine runs unless its bytes are the ones its manifest recorded, and no
parity verdict counts unless parity.json names those bytes and the checkpoint.

Each case tampers with a copy of a real export (or engine folder) the way an accident or an edit would,
and asserts the specific error before anything runs. Digests are recomputed here with hashlib, not read
back from the code under test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from tests.export.conftest import MODELS
from zsbench.backends import BackendOptions, ModelRef, load_backend
from zsbench.errors import EngineError, ExportError, ParityError
from zsbench.export.trt_build import EngineConfig, build_engines
from zsbench.runtime.engine_manifest import load_engine_manifest
from zsbench.runtime.flavor import installed_flavors
from zsbench.runtime.trust import DIGEST_CACHE


def load_onnx(folder: Path, pretrained: Path, gate: bool = True) -> object:
    ref = ModelRef("internvl", MODELS["c"], str(pretrained))
    return load_backend("onnx", ref, torch.device("cpu"), "fp32", BackendOptions(parity_gate=gate, export_root=folder))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.fixture()
def export_c(exports: dict, copy_export) -> Path:
    return copy_export(exports[("c", "fp32")])


def test_manifest_records_the_sha256_of_every_graph_file_and_parity_names_them(export_c: Path) -> None:
    manifest = json.loads((export_c / "manifest.json").read_text())
    recorded = {name: digest for graph in manifest["graphs"].values() for name, digest in graph["sha256"].items()}
    files = {"vision.onnx", "vision.onnx.data", "text.onnx", "text.onnx.data"}
    assert set(recorded) == files
    assert recorded == {name: sha256(export_c / name) for name in files}
    parity = json.loads((export_c / "parity.json").read_text())
    assert parity["files"] == recorded and parity["checkpoint"] == manifest["checkpoint"]["digest"]


def test_an_untouched_export_loads_and_its_digests_are_cached_by_stat_key(export_c: Path, tiny_hf_folder: Path) -> None:
    assert load_onnx(export_c, tiny_hf_folder).encoder.name == "onnx"  # type: ignore[attr-defined]
    cache = json.loads((export_c / DIGEST_CACHE).read_text())
    for name, entry in cache.items():
        stat = (export_c / name).stat()
        assert entry == {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns,
                         "inode": stat.st_ino, "device": stat.st_dev, "sha256": sha256(export_c / name)}


def test_another_models_graph_is_refused_by_name(export_c: Path, exports: dict, tiny_hf_folder: Path) -> None:
    shutil.copy(exports[("g", "fp32")].folder / "vision.onnx", export_c / "vision.onnx")
    with pytest.raises(ExportError, match=r"vision\.onnx is not the file\(s\) its manifest recorded.*--force"):
        load_onnx(export_c, tiny_hf_folder)


def test_half_zeroed_weights_are_refused_even_with_a_stale_digest_cache(export_c: Path, tiny_hf_folder: Path) -> None:
    load_onnx(export_c, tiny_hf_folder)  # fills the digest cache with the good digests
    data = export_c / "text.onnx.data"
    size = data.stat().st_size
    with open(data, "r+b") as handle:  # same size, half of it zeros
        handle.seek(size // 4)
        handle.write(b"\x00" * (size // 2))
    with pytest.raises(ExportError, match=r"text\.onnx\.data is not the file\(s\) its manifest recorded"):
        load_onnx(export_c, tiny_hf_folder)
    # The gate is about trust in the verdict; the bytes are checked with the gate off too.
    with pytest.raises(ExportError, match=r"text\.onnx\.data"):
        load_onnx(export_c, tiny_hf_folder, gate=False)


def test_damage_whose_mtime_is_restored_is_refused(export_c: Path, tiny_hf_folder: Path) -> None:
    """The sweep's case: a graph with 200 kB zeroed and its mtime restored (`os.utime`, `rsync -a` of a damaged file)."""
    load_onnx(export_c, tiny_hf_folder)  # fills the digest cache with the good digests
    data = export_c / "vision.onnx.data"
    before = data.stat()
    zeroed = min(200_000, before.st_size // 2)
    with open(data, "r+b") as handle:
        handle.seek(before.st_size // 4)
        handle.write(b"\x00" * zeroed)
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (data.stat().st_size, data.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    with pytest.raises(ExportError, match=r"vision\.onnx\.data is not the file\(s\) its manifest recorded"):
        load_onnx(export_c, tiny_hf_folder)


def test_a_manifest_that_stops_vouching_for_a_graph_file_is_refused(export_c: Path, tiny_hf_folder: Path) -> None:
    manifest = json.loads((export_c / "manifest.json").read_text())
    del manifest["graphs"]["vision"]["sha256"]["vision.onnx"]
    (export_c / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match=r"incomplete.*no SHA-256 recorded for vision\.onnx"):
        load_onnx(export_c, tiny_hf_folder)


@pytest.mark.parametrize("outside", ["../elsewhere/vision.onnx", "/abs/vision.onnx"])
def test_a_manifest_naming_a_graph_outside_its_folder_says_so(export_c: Path, tiny_hf_folder: Path, outside: str) -> None:
    """The sweep's unclear case: such a manifest was "incomplete (ValueError('no SHA-256 recorded for ...'))"."""
    manifest = json.loads((export_c / "manifest.json").read_text())
    graph = manifest["graphs"]["vision"]
    graph["sha256"][outside] = graph["sha256"].pop(graph["file"])
    graph["file"] = outside
    (export_c / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExportError) as caught:
        load_onnx(export_c, tiny_hf_folder)
    message = str(caught.value)
    assert f"is incomplete or damaged: it names the file {outside!r}, which is not in its own folder" in message
    assert "ValueError" not in message and "no SHA-256" not in message
    del manifest["graphs"]["vision"]["sha256"]
    (export_c / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match=r"is incomplete or damaged: it lacks the entry 'sha256'\. Re-export"):
        load_onnx(export_c, tiny_hf_folder)


def test_a_missing_graph_file_is_named(export_c: Path, tiny_hf_folder: Path) -> None:
    (export_c / "vision.onnx.data").unlink()
    with pytest.raises(ExportError, match=r"lacks vision\.onnx\.data"):
        load_onnx(export_c, tiny_hf_folder)


@pytest.mark.parametrize(
    ("forgery", "message"),
    [
        ("failed report", r"parity check against PyTorch failed"),
        ("no report", r"never ran \(no parity\.json\)"),
        ("report about other files", r"parity\.json is not about the files here"),
        ("report about another checkpoint", r"checked a model from checkpoint"),
    ],
)
def test_a_manifest_saying_passed_cannot_forge_the_verdict(export_c: Path, tiny_hf_folder: Path, forgery: str, message: str) -> None:
    edit_json(export_c / "manifest.json", parity_passed=True)
    report = export_c / "parity.json"
    if forgery == "failed report":
        edit_json(report, status="failed", passed=False)
    elif forgery == "no report":
        report.unlink()
    elif forgery == "report about other files":
        files = json.loads(report.read_text())["files"]
        edit_json(report, files={**files, "vision.onnx": "0" * 64})
    else:
        edit_json(report, checkpoint="f" * 64)
    with pytest.raises(ParityError, match=message):
        load_onnx(export_c, tiny_hf_folder)
    assert load_onnx(export_c, tiny_hf_folder, gate=False).encoder.name == "onnx"  # type: ignore[attr-defined]


def test_a_failed_check_is_not_undone_by_editing_the_manifest(export_c: Path, tiny_hf_folder: Path) -> None:
    """The user-visible path: `zsbench parity` writes a failing report; flipping the flag changes nothing."""
    edit_json(export_c / "parity.json", status="failed", passed=False, reason="text: cosine below threshold")
    edit_json(export_c / "manifest.json", parity_passed=True)
    with pytest.raises(ParityError, match="cosine below threshold"):
        load_onnx(export_c, tiny_hf_folder)


needs_builder = pytest.mark.skipif(not installed_flavors(), reason="no TensorRT or TensorRT-RTX builder installed")


@needs_builder
@pytest.mark.trt
def test_engines_record_their_sha256_and_a_swapped_engine_is_refused(exports: dict, copy_export, tmp_path: Path) -> None:
    export = copy_export(exports[("c", "fp16")], "export")
    engines = tmp_path / "engines"
    config = EngineConfig(export, out=engines, batch_profiles=((1, 2, 4),), text_length=(1, 8, 80), workspace_gib=1.0)
    build_engines(config)
    manifest = json.loads((engines / "manifest.json").read_text())
    assert manifest["engine_sha256"] == {name: sha256(engines / name) for name in ("vision.engine", "text.engine")}
    assert json.loads((engines / "parity.json").read_text())["files"] == manifest["engine_sha256"]
    assert build_engines(config).reused
    recorded = json.loads((engines / "manifest.json").read_text())
    (engines / "manifest.json").write_text(json.dumps({**recorded, "engine_sha256": {}}))
    with pytest.raises(EngineError, match=r"incomplete.*no SHA-256 recorded for vision\.engine"):
        load_engine_manifest(engines)
    (engines / "manifest.json").write_text(json.dumps(recorded))
    shutil.copy(engines / "text.engine", engines / "vision.engine")
    with pytest.raises(EngineError, match=r"vision\.engine is not the file\(s\) its manifest recorded.*--force"):
        build_engines(config)
    assert build_engines(EngineConfig(export, out=engines, batch_profiles=((1, 2, 4),), text_length=(1, 8, 80),
                                      workspace_gib=1.0, force=True)).manifest.engine_sha256["vision.engine"] == sha256(engines / "vision.engine")


@needs_builder
@pytest.mark.trt
def test_engines_are_not_built_from_an_export_whose_verdict_is_forged(exports: dict, copy_export, tmp_path: Path) -> None:
    export = copy_export(exports[("c", "fp16")], "export")
    edit_json(export / "parity.json", status="failed", passed=False)
    with pytest.raises(EngineError, match="only from graphs proven equal to PyTorch.*failed"):
        build_engines(EngineConfig(export, out=tmp_path / "engines"))
