"""FP16 TensorRT engines from the fp16 graphs: TensorRT-RTX builds them on any machine (ahead of
time without a GPU); with a GPU, the engines are run and checked for parity against PyTorch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from zsbench.cli import main
from zsbench.errors import EngineError, ZsbenchError
from zsbench.export.trt_build import EngineConfig, build_engines, build_targets
from zsbench.runtime.engine_manifest import ShapeProfile, load_engine_manifest
from zsbench.runtime.flavor import (
    AHEAD_OF_TIME,
    AHEAD_OF_TIME_TARGET,
    TrtFlavor,
    choose_flavor,
    default_rtx_targets,
    format_capability,
    gpu_target,
    installed_flavors,
    rtx_capabilities,
    select_trt_flavor,
    trt_module,
)
from zsbench.runtime.trt import Chunk, choose_profile, plan_batches

HAS_GPU = torch.cuda.is_available()
# Without a GPU only TensorRT-RTX can build; with one, `auto` picks the flavor for the card.
FLAVOR = "auto" if HAS_GPU else "tensorrt-rtx"


def _builder_missing() -> str | None:
    """Why no TensorRT can build here (None: one can): the flavor rule's own message."""
    try:
        choose_flavor(FLAVOR, gpu_target(), installed_flavors())
    except ZsbenchError as err:
        return str(err)
    return None


needs_builder = pytest.mark.skipif(_builder_missing() is not None, reason=f"no TensorRT builder here: {_builder_missing()}")
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="running TensorRT engines needs a CUDA GPU; torch sees none here")
PROFILES = ((1, 4, 8), (8, 32, 64))


def test_profile_choice_and_batch_splitting() -> None:
    profiles = [ShapeProfile("x", (1, 3), (4, 3), (8, 3)), ShapeProfile("x", (8, 3), (32, 3), (64, 3))]
    assert choose_profile(profiles, (1, 3)) == 0
    assert choose_profile(profiles, (8, 3)) == 0  # both fit: the tighter one
    assert choose_profile(profiles, (9, 3)) == 1
    assert choose_profile(profiles, (65, 3)) is None and choose_profile(profiles, (2, 4)) is None
    # Beyond the largest profile: chunks of its maximum, the remainder on the profile that fits it.
    assert plan_batches(profiles, (130, 3)) == [Chunk(0, 64, 1, 64), Chunk(64, 128, 1, 64), Chunk(128, 130, 0, 2)]


def test_flavor_choice_is_checked() -> None:
    with pytest.raises(EngineError, match="expected auto, tensorrt or tensorrt-rtx"):
        select_trt_flavor("tensorrt-llm", AHEAD_OF_TIME_TARGET)


@pytest.mark.trt
@needs_builder
@pytest.mark.parametrize("head", ["c", "g"])
def test_engines_build_from_fp16_graphs_with_dynamic_profiles(exports: dict, tmp_path: Path, head: str) -> None:
    export = exports[(head, "fp16")]
    out = tmp_path / "engines"
    start = time.perf_counter()
    result = build_engines(EngineConfig(export.folder, out=out, flavor=FLAVOR, batch_profiles=PROFILES, text_length=(1, 16, 80)))
    seconds = time.perf_counter() - start
    manifest = load_engine_manifest(out)
    assert manifest == result.manifest and not result.reused
    assert manifest.strongly_typed and manifest.flavor in ("tensorrt", "tensorrt-rtx") and manifest.trt_version
    assert {(p.min[0], p.opt[0], p.max[0]) for p in manifest.profiles["vision"]} == set(PROFILES)
    assert manifest.profiles["vision"][0].max == (8, 3, 32, 32)
    assert [p.max for p in manifest.profiles["text"]] == [(8, 80), (64, 80)]
    assert manifest.onnx == {graph: spec.fingerprint.digest for graph, spec in export.manifest.graphs.items()}
    for name in manifest.engines.values():
        assert (out / name).stat().st_size > 0
    parity = json.loads((out / "parity.json").read_text())
    if HAS_GPU:
        assert manifest.device == torch.cuda.get_device_name() and parity["passed"], parity
    else:
        assert (manifest.device, manifest.compute_capability) == (AHEAD_OF_TIME, AHEAD_OF_TIME)
        # Explicit targets: every one the installed TensorRT-RTX lists but 7.5.
        listed = rtx_capabilities(trt_module(select_trt_flavor(FLAVOR, AHEAD_OF_TIME_TARGET)))
        assert manifest.compute_capabilities == tuple(format_capability(c) for c in default_rtx_targets(listed))
        assert "8.0" in manifest.compute_capabilities or (8, 0) not in listed
        assert manifest.timing_cache is None  # TensorRT-RTX takes none
        assert parity["status"] == "not run" and "no GPU" in parity["reason"] and manifest.parity_status == "not run"
    print(f"\n{manifest.flavor} build of tiny InternVL-{head.upper()} (2 engines, 2 profiles): {seconds:.1f} s")


@pytest.mark.trt
@needs_builder
def test_matching_engines_are_reused_and_stale_ones_rebuilt(exports: dict, tmp_path: Path) -> None:
    export, out = exports[("c", "fp16")], tmp_path / "engines"
    config = EngineConfig(export.folder, out=out, flavor=FLAVOR, batch_profiles=((1, 2, 4),))
    messages: list[str] = []
    build_engines(config, log=messages.append)
    assert build_engines(config, log=messages.append).reused
    assert any(m.startswith("Reusing the engines") for m in messages)
    for field, value, reason in [
        ("trt_version", "0.0.1", "built with"),
        ("device", "NVIDIA Imaginary GPU", "built for NVIDIA Imaginary GPU"),
        ("onnx", {"vision": "0" * 64, "text": "0" * 64}, "changed since the engines were built"),
    ]:
        manifest = json.loads((out / "manifest.json").read_text())
        manifest[field] = value
        (out / "manifest.json").write_text(json.dumps(manifest))
        messages.clear()
        result = build_engines(config, log=messages.append)
        assert not result.reused and any(m.startswith("Rebuilding") and reason in m for m in messages), messages
    messages.clear()
    assert not build_engines(EngineConfig(export.folder, out=out, flavor=FLAVOR, batch_profiles=((1, 2, 8),)),
                             log=messages.append).reused
    assert any("other optimization profiles" in m for m in messages)


@pytest.mark.trt
@pytest.mark.skipif(HAS_GPU or "tensorrt-rtx" not in installed_flavors(), reason="ahead-of-time TensorRT-RTX builds: no GPU, TensorRT-RTX")
def test_ahead_of_time_builds_for_explicit_targets_turing_only_when_asked(exports: dict, tmp_path: Path) -> None:
    export, out = exports[("c", "fp16")], tmp_path / "engines"
    config = EngineConfig(export.folder, out=out, flavor="tensorrt-rtx", batch_profiles=((1, 2, 4),), text_length=(1, 8, 16),
                          compute_capabilities=("8.6", "7.5"))
    built = build_engines(config).manifest
    assert built.compute_capabilities == ("7.5", "8.6") and all((out / f).stat().st_size for f in built.engines.values())
    assert json.loads((out / "manifest.json").read_text())["compute_capabilities"] == ["7.5", "8.6"]
    messages: list[str] = []
    assert build_engines(EngineConfig(export.folder, out=out, flavor="tensorrt-rtx", batch_profiles=((1, 2, 4),),
                                      text_length=(1, 8, 16), compute_capabilities=("8.6",)), log=messages.append).reused
    wider = build_engines(EngineConfig(export.folder, out=out, flavor="tensorrt-rtx", batch_profiles=((1, 2, 4),),
                                       text_length=(1, 8, 16), compute_capabilities=("8.6", "8.9")), log=messages.append)
    assert not wider.reused and wider.manifest.compute_capabilities == ("8.6", "8.9")
    assert any("built for compute capability 7.5, 8.6; 8.6, 8.9 requested" in m for m in messages), messages
    flavor = select_trt_flavor("tensorrt-rtx", AHEAD_OF_TIME_TARGET)
    with pytest.raises(EngineError, match=r"--compute_capabilities 9.0: tensorrt-rtx .* builds for compute capability 7.5, "):
        build_targets(flavor, AHEAD_OF_TIME_TARGET, ("9.0",))
    with pytest.raises(EngineError, match="standard TensorRT builds for the GPU it runs on"):
        build_targets(TrtFlavor("tensorrt", "10.13"), AHEAD_OF_TIME_TARGET, ("8.6",))
    with pytest.raises(EngineError, match="expected a compute capability MAJOR.MINOR such as 8.6, found 'sm86'"):
        build_engines(EngineConfig(export.folder, out=out, flavor="tensorrt-rtx", compute_capabilities=("sm86",)))


@pytest.mark.trt
@needs_builder
def test_an_old_polygraphy_is_refused_in_one_line_with_the_fix(exports: dict, tmp_path: Path) -> None:
    """polygraphy 0.49.24 (PyPI's last release before CreateConfigRTX) in front of the real one: the build
    says what to upgrade instead of raising an ImportError."""
    shadow = tmp_path / "site"
    (shadow / "polygraphy").mkdir(parents=True)
    (shadow / "polygraphy" / "__init__.py").write_text('__version__ = "0.49.24"\n')
    (shadow / "polygraphy-0.49.24.dist-info").mkdir()
    (shadow / "polygraphy-0.49.24.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: polygraphy\nVersion: 0.49.24\n")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow), str(repo)])}
    result = subprocess.run([sys.executable, "-m", "zsbench", "engine", "build", str(exports[("c", "fp16")].folder),
                             "--out", str(tmp_path / "engines"), "--trt_flavor", FLAVOR],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert "polygraphy 0.49.24 is too old" in line and "Fix: pip install --upgrade 'polygraphy>=0.5" in line  # 0.50.3 (RTX) or 0.53.4


@pytest.mark.trt
@needs_builder
def test_engine_build_refuses_an_export_modified_after_the_fact(exports: dict, copy_export, tmp_path: Path) -> None:
    folder = copy_export(exports[("g", "fp16")])
    with open(folder / "text.onnx.data", "r+b") as handle:
        handle.write(b"\x00" * 16)
    with pytest.raises(EngineError, match=r"text\.onnx\.data is not the file\(s\) its manifest recorded"):
        build_engines(EngineConfig(folder, out=tmp_path / "engines", flavor=FLAVOR))


@pytest.mark.trt
@needs_builder
def test_cli_exports_pth_checkpoint_and_builds_engines(demo_pth_file: Path, tmp_path: Path) -> None:
    # The demo checkpoint as .pth: its trained weights give the fp16 parity probe real margins.
    out, engines = tmp_path / "export", tmp_path / "engines"
    result = CliRunner().invoke(main, [
        "export", "--model", "internvl_c_classification", "--pretrained", str(demo_pth_file),
        "--model_config", str(demo_pth_file.parent / "demo_config.json"), "--device", "cpu", "--out", str(out),
        "--engine", "trt", "--engines-out", str(engines), "--trt-flavor", FLAVOR, "--batch", "1:2:4", "--batch", "4:16:32",
    ])
    assert result.exit_code == 0, result.output
    assert "parity passed" in result.output and "engines in" in result.output
    assert len(load_engine_manifest(engines).profiles["vision"]) == 2
    rerun = CliRunner().invoke(main, ["engine", "build", str(out), "--out", str(engines), "--trt_flavor", FLAVOR,
                                      "--batch", "1:2:4", "--batch", "4:16:32"])
    assert rerun.exit_code == 0 and "Reused" in rerun.output, rerun.output


@pytest.mark.gpu
@pytest.mark.trt
@needs_gpu
@needs_builder
def test_engines_match_pytorch_on_the_gpu(exports: dict, tmp_path: Path) -> None:
    from zsbench.export import check_engine_parity
    from zsbench.runtime.trt import TrtEncoder

    export, out = exports[("g", "fp16")], tmp_path / "engines"
    result = build_engines(EngineConfig(export.folder, out=out, flavor=FLAVOR, batch_profiles=PROFILES))
    assert result.parity, result.parity.summary()
    report = check_engine_parity(export.folder, device="cuda", engines=out)
    assert report, report.summary()
    encoder = TrtEncoder(out, load_engine_manifest(out), torch.device("cuda"))
    pixels = torch.randn(70, 3, 32, 32, device="cuda")  # beyond the largest profile: split into chunks
    whole = encoder.encode_image(pixels)
    parts = torch.cat([encoder.encode_image(pixels[:5]), encoder.encode_image(pixels[5:])])
    assert whole.shape == (70, 32) and whole.is_cuda
    torch.testing.assert_close(whole, parts, atol=2e-3, rtol=2e-3)
    memory = encoder.runtime_memory_mb()
    assert memory is not None and memory["tensorrt_engines_mb"] > 0
    encoder.close()
