"""What an engine folder holds (`engines/<name>/manifest.json`) and the one rule for when its engines are stale.

    manifest.json     EngineManifest: TensorRT flavor and version, GPU and compute capability
                      (or "none/ahead-of-time" for TensorRT-RTX without a GPU), the compute
                      capabilities TensorRT-RTX built for, optimization profiles, workspace,
                      the fingerprint of each ONNX graph, engine parity
    parity.json       ParityReport of the engines against PyTorch fp32 (or "not run: no GPU"),
                      naming the SHA-256 of the engines it checked
    vision.engine     FP16, strongly typed TensorRT engine of vision.onnx
    text.engine       the same for text.onnx
    *.runtime.cache   TensorRT-RTX only: the kernels it compiled for this GPU on first use
                      (one per engine; written by the runner, not by the build)

`stale_reasons` says why engines cannot be used: by `zsbench engine build` (rebuild or reuse)
and by the runner's gate (refuse), with the same rules for the library and the card; a build
also compares graphs, profiles and workspace, and rebuilds engines that failed parity (whether
failed engines may run is the loader's parity gate, not the runner's). A TensorRT-RTX engine runs on
the GPUs whose compute capability its manifest lists (`compute_capabilities`, the build's explicit
targets). Manifests written before that list still load: their ahead-of-time engines (built with
TensorRT-RTX's default targets) are accepted on 8.6, 8.9 and 12.x, and refused on other cards with
the command that rebuilds them for it. Paths are recorded relative to the folder
where they are near it (`zsbench.artifact_paths`), so a copied project folder still works.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zsbench.artifact_paths import MANIFEST, recorded_path, stored_path
from zsbench.errors import EngineError
from zsbench.jsonfiles import read_json_object
from zsbench.runtime.flavor import BuildTarget, format_capability, parse_capability
from zsbench.runtime.trust import manifest_problem, recorded_digests, verify_files

ENGINE_FORMAT = "zsbench-trt-engines/2"  # 2: SHA-256 of each engine file
ENGINE_FILES = {"vision": "vision.engine", "text": "text.engine"}
# Where ahead-of-time TensorRT-RTX engines from manifests without a target list run: the targets every
# TensorRT-RTX release builds for by default (8.6, 8.9, 12.x); 7.5 only when asked, 8.0 only in later releases.
LEGACY_RTX_CAPABILITIES = ((8, 6), (8, 9))
RUNTIME_CACHE_SUFFIX = ".runtime.cache"  # vision.engine -> vision.engine.runtime.cache


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
class EngineManifest:
    """How the engines of an export were built, and whether they passed parity.

    In memory `artifact` and `timing_cache` are absolute; on disk they are recorded relative to
    the engine folder where they are near it (`to_dict(folder)`, `from_dict(data, folder)`)."""

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
    parity_status: str  # for the eye and for rebuilds: the parity gate trusts parity.json about these engines
    parity_reason: str = ""
    engine_sha256: dict[str, str] = field(default_factory=dict)  # engine file -> SHA-256, checked before it runs
    format: str = ENGINE_FORMAT
    versions: dict[str, str | None] = field(default_factory=dict)
    # TensorRT-RTX: the compute capabilities the engines were built for ("8.6", ...); None in manifests
    # written before zsbench recorded them (`runs_on` then falls back to the default targets).
    compute_capabilities: tuple[str, ...] | None = None

    @property
    def target(self) -> BuildTarget:
        return BuildTarget(self.device, self.compute_capability)

    def runs_on(self, target: BuildTarget) -> str | None:
        """Why these engines cannot run on the GPU `target` (None: they can), as far as the card goes."""
        capability = target.capability
        if capability is None:
            return None if self.target == target else f"built for {self.target}, this build is {target}"
        if self.flavor == "tensorrt-rtx" and self.compute_capabilities is not None:
            if format_capability(capability) in self.compute_capabilities:
                return None
            return (f"built by TensorRT-RTX for compute capability {', '.join(self.compute_capabilities)}, "
                    f"not for {target}")
        if self.flavor == "tensorrt-rtx" and self.target.ahead_of_time:
            if capability in LEGACY_RTX_CAPABILITIES or capability[0] == 12:
                return None
            return (f"built ahead of time for TensorRT-RTX's default targets before zsbench recorded them, which "
                    f"leave out {target}")
        return None if self.target == target else f"built for {self.target}, this GPU is {target}"

    def to_dict(self, folder: Path) -> dict[str, Any]:
        """The JSON form written to `folder/manifest.json`."""
        data = asdict(self)
        data["profiles"] = {graph: [p.to_dict() for p in profiles] for graph, profiles in self.profiles.items()}
        data["artifact"] = stored_path(self.artifact, folder)
        data["timing_cache"] = stored_path(self.timing_cache, folder) if self.timing_cache else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> EngineManifest:
        """Reads the JSON form of `folder/manifest.json` (relative or, from older manifests, absolute paths)."""
        values = dict(data)
        values["profiles"] = {g: tuple(ShapeProfile.from_dict(p) for p in ps) for g, ps in data["profiles"].items()}
        values["artifact"] = str(recorded_path(data["artifact"], folder))
        values["timing_cache"] = str(recorded_path(data["timing_cache"], folder)) if data["timing_cache"] else None
        values["engine_sha256"] = recorded_digests(data["engine_sha256"], list(data["engines"].values()))
        if data.get("compute_capabilities") is not None:
            values["compute_capabilities"] = tuple(format_capability(parse_capability(c)) for c in data["compute_capabilities"])
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
        return EngineManifest.from_dict(data, folder)
    except (KeyError, TypeError, ValueError) as err:
        raise EngineError(f"{folder / MANIFEST} is incomplete or damaged: {manifest_problem(err)}. {_REBUILD}") from err


@dataclass(frozen=True)
class BuildRequest:
    """What an engine build asks beyond the library and target: graphs, profiles, workspace, and the
    compute capabilities a TensorRT-RTX build targets (None: not a TensorRT-RTX build)."""

    onnx: dict[str, str]
    profiles: dict[str, tuple[ShapeProfile, ...]]
    workspace_bytes: int
    compute_capabilities: tuple[str, ...] | None = None


def stale_reasons(
    built: EngineManifest, folder: Path, flavor: str, trt_version: str, target: BuildTarget, request: BuildRequest | None = None
) -> list[str]:
    """Why the engines `built` describes (in `folder`) cannot run with `flavor` `trt_version` on
    `target` (empty: they can). With a `request` (an engine build), the graphs, profiles and
    workspace must match it too and failed parity counts; the runner's gate passes none: it
    runs engines as built."""
    reasons = []
    if (built.flavor, built.trt_version) != (flavor, trt_version):
        reasons.append(f"built with {built.flavor} {built.trt_version}, this process uses {flavor} {trt_version}")
    card = built.runs_on(target)
    if card:
        reasons.append(card)
    if request is not None:
        wanted, recorded = request.compute_capabilities, built.compute_capabilities
        if wanted is not None and recorded is None and target.ahead_of_time:
            reasons.append("built before zsbench recorded TensorRT-RTX's compute-capability targets")
        elif wanted is not None and recorded is not None and not set(wanted) <= set(recorded):
            reasons.append(f"built for compute capability {', '.join(recorded)}; {', '.join(wanted)} requested")
        changed = [graph for graph in request.onnx if built.onnx.get(graph) != request.onnx[graph]]
        if changed:
            reasons.append(f"ONNX graph(s) {', '.join(changed)} changed since the engines were built")
        if (built.profiles, built.workspace_bytes) != (request.profiles, request.workspace_bytes):
            reasons.append("other optimization profiles or workspace requested")
        if built.parity_status == "failed":
            reasons.append(f"the engines failed parity ({built.parity_reason})")
    missing = [name for name in built.engines.values() if not (folder / name).is_file()]
    if missing:
        reasons.append(f"engine file(s) missing: {', '.join(missing)}")
    return reasons


def check_engines_usable(built: EngineManifest, folder: Path, flavor: str, trt_version: str, target: BuildTarget) -> None:
    """The runner's gate, run before an engine is deserialised: `stale_reasons` without a build request,
    then each engine file against the SHA-256 the manifest records.

    Raises:
        EngineError: naming what differs (the card, the library, a replaced file) and the command that rebuilds them.
    """
    reasons = stale_reasons(built, folder, flavor, trt_version, target)
    if reasons:
        raise EngineError(
            f"The engines in {folder} cannot run here: {'; '.join(reasons)}. "
            f"Rebuild them with `zsbench engine build {built.artifact} --out {folder}`."
        )
    verify_files(folder, built.engine_sha256, EngineError, rebuild_fix(built.artifact, folder))


def rebuild_fix(artifact: str, folder: Path) -> str:
    """The sentence that tells a user how to replace the engines in `folder`."""
    return f"Rebuild them with `zsbench engine build {artifact} --out {folder} --force`."

