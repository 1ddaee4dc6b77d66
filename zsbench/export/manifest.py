"""What an export folder holds (`manifest.json`), as typed values that round-trip to JSON.

An export folder `export/<name>/` holds:

    manifest.json        ExportManifest: model, graph name, checkpoint fingerprint, config, preprocessing,
                         tokenizer facts, precision, opset, graph IO and policy, package versions,
                         exporter, parity verdict (as the model family's `ExportSpec` describes them)
    parity.json          ParityReport of the ONNX graphs against PyTorch fp32 (ONNX Runtime)
    vision.onnx          pixel_values [batch, 3, H, W] float32 -> image_embeds [batch, D]
                         (int8 and fp8: quantized from the fp32 graph; `quantization` records how, and on what
                         calibration set)
    vision.onnx.data     its weights (ONNX external data)
    text.onnx            input_ids [batch, length] int64 -> text_embeds [batch, D]
    text.onnx.data

Checkpoint paths (pretrained, tokenizer, model config, tokenizer file) are absolute in memory
and recorded relative to the folder on disk where they are near it (`zsbench.artifact_paths`),
so a project folder copied to another machine still finds them; absolute paths still read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zsbench.artifact_paths import MANIFEST, PARITY, recorded_path, stored_path
from zsbench.errors import ExportError
from zsbench.export.fingerprint import Fingerprint
from zsbench.jsonfiles import read_json_object
from zsbench.models.ref import ModelRef
from zsbench.runtime.trust import local_name, manifest_problem, recorded_digests

__all__ = ["MANIFEST", "PARITY", "ExportManifest", "GraphSpec", "IOSpec", "load_export_manifest", "package_version", "read_json"]
# 2: graph_policy (fp16 islands and fusion rewrites); 3: SHA-256 of every graph file;
# 4: fingerprints hash whole files (3 hashed three 1 MiB windows of each); 5: graph (the family's graph name);
# 6: target (graphs for TensorRT engines) and quantization (how quantized graphs were made and calibrated).
FORMAT = "zsbench-onnx-export/6"
# Formats this version reads: a format-4 manifest's graph name is its family's for its model name; formats 4 and 5
# hold no quantized graphs.
READABLE_FORMATS = ("zsbench-onnx-export/4", "zsbench-onnx-export/5", FORMAT)


@dataclass(frozen=True)
class IOSpec:
    """One graph input or output: name, shape (ints, or names of dynamic axes) and dtype."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IOSpec:
        return cls(data["name"], tuple(data["shape"]), data["dtype"])


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX graph of an export: its files, IO and fingerprint (what engines are checked against)."""

    file: str
    external_data: str
    inputs: tuple[IOSpec, ...]
    outputs: tuple[IOSpec, ...]
    fingerprint: Fingerprint
    weight_bytes: int
    sha256: dict[str, str]  # file name -> SHA-256 of the graph and its external data, checked before they run

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "external_data": self.external_data,
            "inputs": [io.to_dict() for io in self.inputs],
            "outputs": [io.to_dict() for io in self.outputs],
            "fingerprint": self.fingerprint.to_dict(),
            "weight_bytes": self.weight_bytes,
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GraphSpec:
        return cls(
            file=data["file"],
            external_data=local_name(data["external_data"]),
            inputs=tuple(IOSpec.from_dict(io) for io in data["inputs"]),
            outputs=tuple(IOSpec.from_dict(io) for io in data["outputs"]),
            fingerprint=Fingerprint.from_dict(data["fingerprint"]),
            weight_bytes=int(data["weight_bytes"]),
            sha256=recorded_digests(data["sha256"], [data["file"]]),
        )


_PATHS = ("pretrained", "tokenizer", "model_config")  # the checkpoint's paths (text["tokenizer_file"] too, when recorded)


@dataclass(frozen=True)
class ExportManifest:
    """Everything needed to trust, reuse or reproduce an export (see the module docstring)."""

    model_type: str
    model_name: str
    graph: str
    pretrained: str
    tokenizer: str | None
    model_config: str | None
    checkpoint: Fingerprint
    config: dict[str, Any]
    preprocess: dict[str, Any]
    text: dict[str, Any]
    precision: str
    opset: int
    graphs: dict[str, GraphSpec]
    graph_policy: dict[str, tuple[str, ...]]
    exporter: dict[str, Any]
    versions: dict[str, str | None]
    export_device: str
    export_seconds: float
    parity_passed: bool  # for the eye: the parity gate trusts parity.json about these files (zsbench.runtime.trust)
    format: str = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)
    target: str = ""  # "" (graphs every runtime runs) or "trt" (the Q/DQ graphs engines of a quantized precision are built from)
    quantization: dict[str, dict[str, Any]] = field(default_factory=dict)  # graph -> `QuantizedGraph.to_dict()`

    def calibration(self) -> dict[str, Any] | None:
        """The calibration set of a quantized export, as recorded (name, samples, SHA-256 per graph); None otherwise."""
        if not self.quantization:
            return None
        return {graph: record["calibration"] for graph, record in self.quantization.items()}

    def file_digests(self) -> dict[str, str]:
        """SHA-256 of every graph file the export holds (name -> digest), as recorded when written."""
        return {name: digest for graph in self.graphs.values() for name, digest in graph.sha256.items()}

    def reexport_fix(self, folder: Path) -> str:
        """The sentence that tells a user how to replace this export in `folder`."""
        engine = " --engine trt" if self.target else ""
        return (f"Re-export it with `zsbench export --model_type {self.model_type} --model {self.model_name} --pretrained "
                f"{self.pretrained} --precision {self.precision}{engine} --output_dir {folder} --force`.")

    def model_ref(self) -> ModelRef:
        """The model and checkpoint the export was made from, as recorded (absolute paths)."""
        return ModelRef(self.model_type, self.model_name, self.pretrained, self.tokenizer, self.model_config)

    def describe(self) -> str:
        target = ", for TensorRT engines" if self.target else ""
        return f"{self.model_name} ({self.precision}{target}) from {self.pretrained} [checkpoint {self.checkpoint.short}]"

    def to_dict(self, folder: Path) -> dict[str, Any]:
        """The JSON form written to `folder/manifest.json` (paths near `folder` made relative to it)."""
        data = asdict(self)
        data["checkpoint"] = self.checkpoint.to_dict()
        data["graphs"] = {name: graph.to_dict() for name, graph in self.graphs.items()}
        data["graph_policy"] = {name: list(lines) for name, lines in self.graph_policy.items()}
        for key in _PATHS:
            data[key] = stored_path(data[key], folder) if data[key] else None
        if "tokenizer_file" in self.text:
            data["text"] = {**self.text, "tokenizer_file": stored_path(self.text["tokenizer_file"], folder)}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> ExportManifest:
        """Reads the JSON form of `folder/manifest.json` (relative or, from older manifests, absolute paths)."""
        values = dict(data)
        values["checkpoint"] = Fingerprint.from_dict(data["checkpoint"])
        values["graphs"] = {name: GraphSpec.from_dict(graph) for name, graph in data["graphs"].items()}
        values["graph_policy"] = {name: tuple(lines) for name, lines in data["graph_policy"].items()}
        for key in _PATHS:
            values[key] = str(recorded_path(data[key], folder)) if data[key] else None
        if "tokenizer_file" in data["text"]:
            values["text"] = {**data["text"], "tokenizer_file": str(recorded_path(data["text"]["tokenizer_file"], folder))}
        if "graph" not in data:  # format 4: the family names the graph of its model name
            from zsbench.models.families import export_spec

            values["graph"] = export_spec(data["model_type"], data["model_name"], "Reading an export").graph
        values["format"] = FORMAT  # an older format's export records every field of this one (defaults: not quantized)
        return cls(**values)


def package_version(name: str) -> str | None:
    """The installed version of a distribution, or None."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def read_json(path: Path, what: str) -> dict[str, Any]:
    """Reads one JSON object of an export or engine folder (`what`: "manifest", "parity report", ...)."""
    return read_json_object(path, ExportError, f"the {what} of an export folder", "Re-run `zsbench export` (with --force to replace it).")


def load_export_manifest(folder: Path) -> ExportManifest:
    """Reads `folder/manifest.json`.

    Raises:
        ExportError: the folder is not a zsbench export, or its manifest is damaged or of another format.
    """
    data = read_json(folder / MANIFEST, "manifest")
    if data.get("format") not in READABLE_FORMATS:
        raise ExportError(
            f"{folder / MANIFEST} has format {data.get('format')!r}, expected {' or '.join(map(repr, READABLE_FORMATS))}. "
            "It was written by another tool or version; re-export with `zsbench export --force`."
        )
    try:
        return ExportManifest.from_dict(data, folder)
    except (KeyError, TypeError, ValueError) as err:
        raise ExportError(f"{folder / MANIFEST} is incomplete or damaged: {manifest_problem(err)}. "
                          "Re-export with `zsbench export --force`.") from err
