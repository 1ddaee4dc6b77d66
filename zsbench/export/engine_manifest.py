"""What an engine folder holds (`engines/<name>/manifest.json`) and when its engines are stale.

    manifest.json     EngineManifest: TensorRT flavor and version, GPU and compute capability
                      (or "none/ahead-of-time" for TensorRT-RTX without a GPU), optimization
                      profiles, workspace, the fingerprint of each ONNX graph, engine parity
    parity.json       ParityReport of the engines against PyTorch fp32 (or "not run: no GPU")
    vision.engine     FP16, strongly typed TensorRT engine of vision.onnx
    text.engine       the same for text.onnx

An engine is used only if its manifest matches the TensorRT in use, this machine's GPU (an
ahead-of-time TensorRT-RTX engine is accepted on any GPU; TensorRT-RTX checks it when
loading it), and the ONNX graphs of the export as they are now. Otherwise it is rebuilt, or
the runner refuses it with an `EngineError`, never used silently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zsbench.errors import EngineError
from zsbench.export.manifest import MANIFEST
from zsbench.jsonfiles import read_json_object

ENGINE_FORMAT = "zsbench-trt-engines/1"
AHEAD_OF_TIME = "none/ahead-of-time"
ENGINE_FILES = {"vision": "vision.engine", "text": "text.engine"}


@dataclass(frozen=True)
class ShapeProfile:
    """One optimization profile of one input: min / opt / max shapes."""

    input: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def contains(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == len(self.min) and all(lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max))

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShapeProfile:
        return cls(data["input"], tuple(data["min"]), tuple(data["opt"]), tuple(data["max"]))


@dataclass(frozen=True)
class BuildTarget:
    """Where engines are built for: a GPU (name, compute capability) or ahead of time."""

    device: str
    compute_capability: str

    @property
    def ahead_of_time(self) -> bool:
        return self.device == AHEAD_OF_TIME


@dataclass(frozen=True)
class EngineManifest:
    """How the engines of an export were built, and whether they passed parity."""

    artifact: str
    model_name: str
    flavor: str
    trt_version: str
    device: str
    compute_capability: str
    strongly_typed: bool
    workspace_bytes: int
    profiles: dict[str, tuple[ShapeProfile, ...]]
    onnx: dict[str, str]
    engines: dict[str, str]
    timing_cache: str | None
    build_seconds: dict[str, float]
    parity_status: str
    parity_reason: str = ""
    format: str = ENGINE_FORMAT
    versions: dict[str, str | None] = field(default_factory=dict)

    @property
    def target(self) -> BuildTarget:
        return BuildTarget(self.device, self.compute_capability)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["profiles"] = {graph: [p.to_dict() for p in profiles] for graph, profiles in self.profiles.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineManifest:
        values = dict(data)
        values["profiles"] = {g: tuple(ShapeProfile.from_dict(p) for p in ps) for g, ps in data["profiles"].items()}
        return cls(**values)


_REBUILD = "Build the engines with `zsbench engine build <export folder>` (--force to replace them)."


def read_engine_json(path: Path, what: str) -> dict[str, Any]:
    """Reads one JSON object of an engine folder (`what`: "engine manifest", "engine parity report")."""
    return read_json_object(path, EngineError, f"the {what} of an engine folder", _REBUILD)


def load_engine_manifest(folder: Path) -> EngineManifest:
    """Reads `folder/manifest.json`; raises `EngineError` if it is missing, damaged or of another format."""
    data = read_engine_json(folder / MANIFEST, "engine manifest")
    if data.get("format") != ENGINE_FORMAT:
        raise EngineError(f"{folder / MANIFEST} has format {data.get('format')!r}, expected {ENGINE_FORMAT!r}. {_REBUILD}")
    try:
        return EngineManifest.from_dict(data)
    except (KeyError, TypeError, ValueError) as err:
        raise EngineError(f"{folder / MANIFEST} is incomplete ({err!r}). {_REBUILD}") from err


def stale_reasons(built: EngineManifest, wanted: EngineManifest, folder: Path) -> list[str]:
    """Why the engines described by `built` cannot stand in for `wanted` (empty: reuse them)."""
    reasons = []
    if (built.flavor, built.trt_version) != (wanted.flavor, wanted.trt_version):
        reasons.append(f"built with {built.flavor} {built.trt_version}, this process uses {wanted.flavor} {wanted.trt_version}")
    if built.target != wanted.target:
        reasons.append(
            f"built for {built.device} (compute capability {built.compute_capability}), "
            f"now building for {wanted.device} ({wanted.compute_capability})"
        )
    changed = [graph for graph in wanted.onnx if built.onnx.get(graph) != wanted.onnx[graph]]
    if changed:
        reasons.append(f"ONNX graph(s) {', '.join(changed)} changed since the engines were built")
    if (built.profiles, built.workspace_bytes) != (wanted.profiles, wanted.workspace_bytes):
        reasons.append("other optimization profiles or workspace requested")
    if built.parity_status == "failed":
        reasons.append("the engines failed parity")
    missing = [name for name in built.engines.values() if not (folder / name).is_file()]
    if missing:
        reasons.append(f"engine file(s) missing: {', '.join(missing)}")
    return reasons


def check_engines_usable(built: EngineManifest, flavor: str, trt_version: str, target: BuildTarget, onnx: dict[str, str]) -> None:
    """The runner's gate: refuses engines that are stale for this process, GPU or export.

    Raises:
        EngineError: naming what differs and the command that rebuilds them.
    """
    problems = []
    if (built.flavor, built.trt_version) != (flavor, trt_version):
        problems.append(f"they were built with {built.flavor} {built.trt_version}, this process has {flavor} {trt_version}")
    if not built.target.ahead_of_time and built.target != target:
        problems.append(f"they were built for {built.device} ({built.compute_capability}), this GPU is {target.device} ({target.compute_capability})")
    changed = [graph for graph, digest in onnx.items() if built.onnx.get(graph) != digest]
    if changed:
        problems.append(f"the ONNX graph(s) {', '.join(changed)} changed since")
    if built.parity_status == "failed":
        problems.append(f"they failed parity ({built.parity_reason})")
    if problems:
        raise EngineError(
            f"The engines for {built.artifact} are stale: {'; '.join(problems)}. "
            f"Rebuild them with `zsbench engine build {built.artifact}`."
        )
