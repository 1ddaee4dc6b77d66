"""`--trt-flavor` by compute capability and installed packages, and the one staleness rule (build and runner)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from zsbench.errors import BackendUnavailableError, EngineError
from zsbench.runtime.engine_manifest import (
    BuildRequest,
    EngineManifest,
    ShapeProfile,
    check_engines_usable,
    load_engine_manifest,
    stale_reasons,
)
from zsbench.runtime.flavor import (
    AHEAD_OF_TIME,
    AHEAD_OF_TIME_TARGET,
    BuildTarget,
    capabilities_from_enum,
    choose_flavor,
    default_rtx_targets,
    install_command,
    polygraphy_problem,
    rtx_supports,
    version_tuple,
)

# TensorRT-RTX 1.6's ComputeCapability list lacked 8.0 (A100); 1.7's has it. The rule reads the installed one's.
RTX_1_6 = capabilities_from_enum(["NONE", "CURRENT", "SM75", "SM86", "SM89", "SM120", "SM121"])
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
    # A100 (8.0), which TensorRT-RTX 1.7 targets: standard TensorRT when installed, else TensorRT-RTX.
    ("auto", A100, BOTH, "tensorrt"), ("auto", A100, RTX, "tensorrt-rtx"),
    # Data-centre cards TensorRT-RTX does not target: standard TensorRT only.
    ("auto", H100, BOTH, "tensorrt"), ("auto", H100, STANDARD, "tensorrt"),
    ("auto", B200, BOTH, "tensorrt"), ("tensorrt", H100, BOTH, "tensorrt"),
    # No GPU: TensorRT-RTX builds ahead of time.
    ("auto", AHEAD_OF_TIME_TARGET, BOTH, "tensorrt-rtx"), ("tensorrt-rtx", AHEAD_OF_TIME_TARGET, RTX, "tensorrt-rtx"),
])
def test_flavor_by_card_and_installed_packages(requested: str, target: BuildTarget, installed: frozenset, expected: str) -> None:
    assert choose_flavor(requested, target, installed) == expected


@pytest.mark.parametrize(("requested", "target", "installed", "error", "message"), [
    ("auto", H100, RTX, BackendUnavailableError, r"tensorrt is needed for NVIDIA H100 80GB HBM3 \(9.0\).*pypi.nvidia.com"),
    ("auto", H100, NONE, BackendUnavailableError, r"NVIDIA H100 80GB HBM3 \(9.0\), which TensorRT-RTX does not target"),
    ("tensorrt-rtx", H100, BOTH, EngineError,
     r"TensorRT-RTX targets compute capability 7.5, 8.0, 8.6, 8.9, 12.0 and 12.1; this GPU is NVIDIA H100"),
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


def test_rtx_targets_come_from_the_installed_list() -> None:
    cards = [(7, 0), (7, 5), (8, 0), (8, 6), (8, 7), (8, 9), (9, 0), (10, 0), (12, 0), (12, 1), (12, 2)]
    assert [c for c in cards if rtx_supports(c)] == [(7, 5), (8, 0), (8, 6), (8, 9), (12, 0), (12, 1)]  # 1.7
    assert [c for c in cards if rtx_supports(c, RTX_1_6)] == [(7, 5), (8, 6), (8, 9), (12, 0), (12, 1)]
    with pytest.raises(BackendUnavailableError, match=r"A100-SXM4-80GB \(8.0\), which TensorRT-RTX does not target"):
        choose_flavor("auto", A100, RTX, RTX_1_6)
    # Ahead of time, 7.5 only when asked: every other listed target by default.
    assert default_rtx_targets(RTX_1_6) == ((8, 6), (8, 9), (12, 0), (12, 1))


def test_the_install_command_names_nvidias_index_and_the_cuda_major() -> None:
    assert install_command("tensorrt", 12) == "pip install --extra-index-url https://pypi.nvidia.com 'zsbench[trt-cu12]'"
    assert install_command("tensorrt", 13) == "pip install --extra-index-url https://pypi.nvidia.com 'zsbench[trt-cu13]'"
    assert install_command("tensorrt", None) == "pip install --extra-index-url https://pypi.nvidia.com 'zsbench[trt]'"
    assert install_command("tensorrt-rtx", 13) == "pip install 'zsbench[trt-rtx]'"
    assert install_command("tensorrt-rtx", 12) == "pip install 'zsbench[trt-rtx-cu12]'"
    with pytest.raises(BackendUnavailableError, match=r"zsbench\[trt-cu12\]"):
        choose_flavor("auto", H100, RTX, cuda_major=12)


def test_old_polygraphy_is_named_with_the_fix() -> None:
    assert version_tuple("10.13.3.9.post1") == (10, 13, 3, 9) and version_tuple("0.53.6") == (0, 53, 6)
    assert polygraphy_problem("tensorrt-rtx", "0.53.6") is None and polygraphy_problem("tensorrt", "0.53.4") is None
    reason, fix = polygraphy_problem("tensorrt-rtx", "0.49.24") or ("", "")  # PyPI's last release without CreateConfigRTX
    assert "polygraphy 0.49.24 is too old to build tensorrt-rtx engines" in reason and fix == "pip install --upgrade 'polygraphy>=0.50.3'"
    assert polygraphy_problem("tensorrt", "0.50.3") == (
        "polygraphy 0.50.3 is too old to build tensorrt engines (zsbench needs >= 0.53.4, for TensorRT 11)",
        "pip install --upgrade 'polygraphy>=0.53.4'")
    assert "is not installed" in str(polygraphy_problem("tensorrt", None))


DEFAULT_TARGETS = ("8.0", "8.6", "8.9", "12.0", "12.1")  # TensorRT-RTX 1.7's list but 7.5


def manifest(target: BuildTarget, flavor: str = "tensorrt-rtx", parity: str = "passed",
             targets: tuple[str, ...] | None = DEFAULT_TARGETS) -> EngineManifest:
    profiles = {"vision": (ShapeProfile("pixel_values", (1, 3, 8, 8), (4, 3, 8, 8), (8, 3, 8, 8)),)}
    return EngineManifest(
        artifact="/x/export/m", model_name="m", flavor=flavor, trt_version="1.7", device=target.device,
        compute_capability=target.compute_capability, strongly_typed=True, workspace_bytes=2**30, profiles=profiles,
        onnx={"vision": "a"}, engines={"vision": "vision.engine"}, timing_cache=None, build_seconds={}, parity_status=parity,
        engine_sha256={"vision.engine": hashlib.sha256(b"plan").hexdigest()}, compute_capabilities=targets if flavor == "tensorrt-rtx" else None,
    )


def test_ahead_of_time_engines_serve_the_cards_they_target_in_build_and_runner_alike(tmp_path: Path) -> None:
    (tmp_path / "vision.engine").write_bytes(b"plan")
    built = manifest(AHEAD_OF_TIME_TARGET)
    for card in (RTX4090, A100, A10, RTX5090, AHEAD_OF_TIME_TARGET):
        request = BuildRequest(built.onnx, built.profiles, built.workspace_bytes, (card.compute_capability,)
                               if card.capability else DEFAULT_TARGETS)
        assert stale_reasons(built, tmp_path, "tensorrt-rtx", "1.7", card, request) == []  # `engine build` reuses them
        assert stale_reasons(built, tmp_path, "tensorrt-rtx", "1.7", card) == []  # and the runner runs them
    for card in (T4, H100):  # 7.5 was not asked for; 9.0 TensorRT-RTX does not target
        (reason,) = stale_reasons(built, tmp_path, "tensorrt-rtx", "1.7", card)
        assert reason == f"built by TensorRT-RTX for compute capability 8.0, 8.6, 8.9, 12.0, 12.1, not for {card}"
    assert built.device == AHEAD_OF_TIME


def test_engines_asked_for_turing_serve_it_and_a_wider_request_rebuilds(tmp_path: Path) -> None:
    (tmp_path / "vision.engine").write_bytes(b"plan")
    built = manifest(AHEAD_OF_TIME_TARGET, targets=("7.5",))
    assert stale_reasons(built, tmp_path, "tensorrt-rtx", "1.7", T4) == []
    assert stale_reasons(built, tmp_path, "tensorrt-rtx", "1.7", RTX4090) != []
    request = BuildRequest(built.onnx, built.profiles, built.workspace_bytes, ("7.5", "8.6"))
    assert stale_reasons(built, tmp_path, "tensorrt-rtx", "1.7", AHEAD_OF_TIME_TARGET, request) == [
        "built for compute capability 7.5; 7.5, 8.6 requested"]


def test_manifests_from_before_the_target_list_still_load(tmp_path: Path) -> None:
    """A manifest written before zsbench recorded TensorRT-RTX's targets: its ahead-of-time engines got
    TensorRT-RTX's defaults, so they run where every release's defaults reach, and elsewhere the runner
    refuses them with the rebuild command."""
    (tmp_path / "vision.engine").write_bytes(b"plan")
    data = manifest(AHEAD_OF_TIME_TARGET).to_dict(tmp_path)
    del data["compute_capabilities"]
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    legacy = load_engine_manifest(tmp_path)
    assert legacy.compute_capabilities is None
    for card in (RTX4090, A10, RTX5090):
        assert stale_reasons(legacy, tmp_path, "tensorrt-rtx", "1.7", card) == []
    for card in (T4, A100):
        with pytest.raises(EngineError, match=r"before zsbench recorded them, which leave out .*"
                                              r"Rebuild them with `zsbench engine build /x/export/m --out"):
            check_engines_usable(legacy, tmp_path, "tensorrt-rtx", "1.7", card)
    request = BuildRequest(legacy.onnx, legacy.profiles, legacy.workspace_bytes, DEFAULT_TARGETS)
    assert stale_reasons(legacy, tmp_path, "tensorrt-rtx", "1.7", AHEAD_OF_TIME_TARGET, request) == [
        "built before zsbench recorded TensorRT-RTX's compute-capability targets"]  # a CPU build makes them anew
    gpu_request = BuildRequest(legacy.onnx, legacy.profiles, legacy.workspace_bytes, ("8.9",))
    assert stale_reasons(legacy, tmp_path, "tensorrt-rtx", "1.7", RTX4090, gpu_request) == []  # reused on a card they serve


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


def test_the_extras_require_what_the_code_checks() -> None:
    """pyproject's TensorRT extras: bounded to the majors the contract tests model, each with the polygraphy
    the build requires for its flavor, and every extra an install command names exists."""
    tomllib = pytest.importorskip("tomllib")
    from zsbench.runtime.flavor import POLYGRAPHY_MINIMUM, TESTED_TRT_MAJORS

    extras = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    upper = f"<{max(TESTED_TRT_MAJORS) + 1}"
    for extra, flavor in {"trt": "tensorrt", "trt-cu12": "tensorrt", "trt-cu13": "tensorrt", "trt-rtx": "tensorrt-rtx",
                          "trt-rtx-cu12": "tensorrt-rtx"}.items():
        library, polygraphy = extras[extra]
        assert polygraphy == f"polygraphy>={POLYGRAPHY_MINIMUM[flavor]}"
        if flavor == "tensorrt":
            assert library.endswith(upper) and f">={min(TESTED_TRT_MAJORS)}." in library, library
        else:
            assert library.endswith("<2"), library
    for flavor in ("tensorrt", "tensorrt-rtx"):
        for cuda in (None, 12, 13):
            assert install_command(flavor, cuda).split("zsbench[")[1].rstrip("]'") in extras  # type: ignore[arg-type]
