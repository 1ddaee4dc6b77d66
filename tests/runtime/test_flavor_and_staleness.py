"""`--trt-flavor` by compute capability and installed packages, and the one staleness rule (build and runner)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zsbench.errors import BackendUnavailableError, EngineError
from zsbench.runtime.engine_manifest import BuildRequest, EngineManifest, ShapeProfile, check_engines_usable, stale_reasons
from zsbench.runtime.flavor import AHEAD_OF_TIME, AHEAD_OF_TIME_TARGET, BuildTarget, choose_flavor, rtx_supports

BOTH, STANDARD, RTX, NONE = frozenset({"tensorrt", "tensorrt-rtx"}), frozenset({"tensorrt"}), frozenset({"tensorrt-rtx"}), frozenset()
T4, A100, A10, RTX4090, H100, B200, RTX5090 = (
    BuildTarget("Tesla T4", "7.5"), BuildTarget("NVIDIA A100-SXM4-80GB", "8.0"), BuildTarget("NVIDIA A10", "8.6"),
    BuildTarget("NVIDIA GeForce RTX 4090", "8.9"), BuildTarget("NVIDIA H100 80GB HBM3", "9.0"),
    BuildTarget("NVIDIA B200", "10.0"), BuildTarget("NVIDIA GeForce RTX 5090", "12.0"),
)


@pytest.mark.parametrize(("requested", "target", "installed", "expected"), [
    # RTX-targeted cards: standard TensorRT when installed, else TensorRT-RTX.
    ("auto", RTX4090, BOTH, "tensorrt"), ("auto", RTX4090, RTX, "tensorrt-rtx"), ("auto", T4, RTX, "tensorrt-rtx"),
    ("auto", A10, RTX, "tensorrt-rtx"), ("auto", RTX5090, RTX, "tensorrt-rtx"), ("tensorrt-rtx", RTX4090, BOTH, "tensorrt-rtx"),
    # Data-centre cards TensorRT-RTX does not target: standard TensorRT only.
    ("auto", A100, BOTH, "tensorrt"), ("auto", H100, BOTH, "tensorrt"), ("auto", H100, STANDARD, "tensorrt"),
    ("auto", B200, BOTH, "tensorrt"), ("tensorrt", H100, BOTH, "tensorrt"),
    # No GPU: TensorRT-RTX builds ahead of time.
    ("auto", AHEAD_OF_TIME_TARGET, BOTH, "tensorrt-rtx"), ("tensorrt-rtx", AHEAD_OF_TIME_TARGET, RTX, "tensorrt-rtx"),
])
def test_flavor_by_card_and_installed_packages(requested: str, target: BuildTarget, installed: frozenset, expected: str) -> None:
    assert choose_flavor(requested, target, installed) == expected


@pytest.mark.parametrize(("requested", "target", "installed", "error", "message"), [
    ("auto", H100, RTX, BackendUnavailableError, r"tensorrt is needed for NVIDIA H100 80GB HBM3 \(9.0\).*pypi.nvidia.com"),
    ("auto", A100, NONE, BackendUnavailableError, r"NVIDIA A100-SXM4-80GB \(8.0\), which TensorRT-RTX does not target"),
    ("tensorrt-rtx", H100, BOTH, EngineError, r"TensorRT-RTX targets compute capability 7.5, 8.6, 8.9 and 12.x; this GPU is NVIDIA H100"),
    ("auto", RTX4090, NONE, BackendUnavailableError, r"tensorrt-rtx is needed for NVIDIA GeForce RTX 4090 \(8.9\).*zsbench\[trt-rtx\]"),
    ("tensorrt", AHEAD_OF_TIME_TARGET, BOTH, BackendUnavailableError, "builds engines on a GPU"),
    ("auto", AHEAD_OF_TIME_TARGET, STANDARD, BackendUnavailableError, "to build ahead of time without a GPU"),
    ("tensorrt-llm", RTX4090, BOTH, EngineError, "expected auto, tensorrt or tensorrt-rtx"),
])
def test_a_missing_or_unsuitable_flavor_names_the_card_and_the_install(
    requested: str, target: BuildTarget, installed: frozenset, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        choose_flavor(requested, target, installed)


def test_rtx_targets() -> None:
    assert [c for c in [(7, 0), (7, 5), (8, 0), (8, 6), (8, 7), (8, 9), (9, 0), (10, 0), (12, 0), (12, 1)] if rtx_supports(c)] == [
        (7, 5), (8, 6), (8, 9), (12, 0), (12, 1)]


def manifest(target: BuildTarget, flavor: str = "tensorrt-rtx", parity: str = "passed") -> EngineManifest:
    profiles = {"vision": (ShapeProfile("pixel_values", (1, 3, 8, 8), (4, 3, 8, 8), (8, 3, 8, 8)),)}
    return EngineManifest(
        artifact="/x/export/m", model_name="m", flavor=flavor, trt_version="1.7", device=target.device,
        compute_capability=target.compute_capability, strongly_typed=True, workspace_bytes=2**30, profiles=profiles,
        onnx={"vision": "a"}, engines={"vision": "vision.engine"}, timing_cache=None, build_seconds={}, parity_status=parity,
    )


def test_ahead_of_time_engines_serve_every_rtx_card_in_build_and_runner_alike(tmp_path: Path) -> None:
    (tmp_path / "vision.engine").write_bytes(b"plan")
    built = manifest(AHEAD_OF_TIME_TARGET)
    request = BuildRequest(built.onnx, built.profiles, built.workspace_bytes)
    for card in (RTX4090, T4, RTX5090, AHEAD_OF_TIME_TARGET):
        assert stale_reasons(built, tmp_path, "tensorrt-rtx", "1.7", card, request) == []  # `engine build` reuses them
        check_engines_usable(built, tmp_path, "tensorrt-rtx", "1.7", card)  # and the runner runs them
    (reason,) = stale_reasons(built, tmp_path, "tensorrt-rtx", "1.7", H100, request)
    assert reason == "built ahead of time for TensorRT-RTX, which does not run on NVIDIA H100 80GB HBM3 (9.0)"
    assert built.device == AHEAD_OF_TIME


def test_engines_for_another_card_are_refused_naming_both_cards(tmp_path: Path) -> None:
    (tmp_path / "vision.engine").write_bytes(b"plan")
    with pytest.raises(EngineError, match=r"built for NVIDIA GeForce RTX 4090 \(8.9\), this GPU is NVIDIA H100 80GB HBM3 \(9.0\)"):
        check_engines_usable(manifest(RTX4090, "tensorrt"), tmp_path, "tensorrt", "1.7", H100)
    with pytest.raises(EngineError, match="built with tensorrt-rtx 1.7, this process uses tensorrt 10.13"):
        check_engines_usable(manifest(RTX4090), tmp_path, "tensorrt", "10.13", RTX4090)
    (tmp_path / "vision.engine").unlink()
    with pytest.raises(EngineError, match="engine file.s. missing: vision.engine"):
        check_engines_usable(manifest(RTX4090), tmp_path, "tensorrt-rtx", "1.7", RTX4090)


def test_failed_parity_rebuilds_but_the_runner_leaves_the_verdict_to_the_gate(tmp_path: Path) -> None:
    (tmp_path / "vision.engine").write_bytes(b"plan")
    built = manifest(RTX4090, parity="failed")
    request = BuildRequest(built.onnx, built.profiles, built.workspace_bytes)
    assert any("failed parity" in r for r in stale_reasons(built, tmp_path, "tensorrt-rtx", "1.7", RTX4090, request))
    check_engines_usable(built, tmp_path, "tensorrt-rtx", "1.7", RTX4090)  # --no-parity-gate may run them
