"""`export_model` (checkpoint -> checked ONNX export folder) and `check_artifact_parity` (rerun the check).

Default output folder: `export/<graph>-<checkpoint name>-<precision>`, where the graph name is
the model name without its task (`export_graph_name`: `internvl_c_classification_hf` and
`internvl_c_retrieval_hf` export the same graphs, so they share one export), the checkpoint
name is the `.pth` file's stem or the Hugging Face folder's name, with characters other than
letters, digits, `.`, `_` and `-` replaced by `_` (e.g. `export/internvl_g_hf-InternVL-14B-224px-fp16`).
A folder holding another model's export is refused unless `force`.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path


from zsbench.errors import ExportError
from zsbench.export.fingerprint import fingerprint_checkpoint
from zsbench.export.manifest import (
    FORMAT,
    MANIFEST,
    PARITY,
    ExportManifest,
    load_export_manifest,
    package_version,
    read_json,
)
from zsbench.export.checking import compute_reference, free_memory, graph_files, load_reference_model, onnx_parity
from zsbench.export.onnx_export import default_opset, export_graphs
from zsbench.export.parity import ParityReport, ParityThresholds
from zsbench.export.config import ExportConfig, ProbeConfig
from zsbench.export.staging import staged_folder
from zsbench.jsonfiles import read_json_object, write_json_atomic
from zsbench.models import InternVL
from zsbench.models.families import require_exportable
from zsbench.models.families.internvl import export_graph_name
from zsbench.runtime.trust import file_digests
from zsbench.types import ExportedBackend, export_precision, resolve_device, resolve_precision

Log = Callable[[str], None]
# Every format version of zsbench's export manifests starts with this ("zsbench-onnx-export/").
EXPORT_FORMAT_FAMILY = FORMAT.partition("/")[0] + "/"
EXPORT_ROOT = Path("export")
_VERSIONED = ("torch", "onnx", "onnxruntime", "onnxscript", "onnx-ir", "numpy", "zsbench")


@dataclass(frozen=True)
class ExportResult:
    """A published export folder, its manifest and its parity report."""

    folder: Path
    manifest: ExportManifest
    parity: ParityReport


def default_export_dir(model_name: str, pretrained: Path, precision: str, root: Path = EXPORT_ROOT) -> Path:
    """`root/<graph>-<checkpoint name>-<precision>` (see the module docstring)."""
    checkpoint = Path(pretrained)
    stem = checkpoint.name if checkpoint.is_dir() or not checkpoint.suffix else checkpoint.stem
    return root / re.sub(r"[^A-Za-z0-9._-]", "_", f"{export_graph_name(model_name)}-{stem}-{precision}")


def package_versions() -> dict[str, str | None]:
    """Python and the versions of the packages an export depends on (recorded in the manifest)."""
    return {"python": sys.version.split()[0], **{name: package_version(name) for name in _VERSIONED}}


def _check_out_folder(
    folder: Path, identity: tuple[str, ...] | None, wanted: str, force: bool, partial: tuple[str, str, str] | None = None
) -> None:
    """Refuses to replace a folder holding something else than an export of this model.

    `force` replaces another model's export, never a folder that is not an export at all
    (the whole folder is replaced, so a mistyped --out must not wipe unrelated files). With
    `partial` (type, name, precision) only those are compared, before the checkpoint is read.
    """
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ExportError(f"--out {folder} is a file; expected a folder for the export. Choose another --out.")
    if not any(folder.iterdir()):
        return
    if not (folder / MANIFEST).is_file():
        raise ExportError(
            f"{folder} holds files but no {MANIFEST}: it is not a zsbench export, and exporting would replace it. "
            "Expected an empty or missing folder, or an earlier export. Choose another --out, or empty it yourself."
        )
    if force:
        _check_is_export(folder)
        return
    try:
        existing = load_export_manifest(folder)
    except ExportError as err:
        raise ExportError(f"{folder} holds a damaged export ({err}). Pass --force to replace it.") from err
    found = existing.identity()
    if (identity is not None and found != identity) or (partial is not None and (found[0], found[1], found[3]) != partial):
        raise ExportError(
            f"{folder} holds the export of {existing.describe()}; expected {wanted}. "
            "Pass --force to replace it, or choose another --out."
        )


def _check_is_export(folder: Path) -> None:
    """Refuses (even with --force) a folder whose manifest.json is not a zsbench export manifest: some
    other tool's manifest.json must not make its folder deletable. Older export formats pass."""
    fix = "It is not a zsbench export, so --force will not replace it. Choose another --out, or empty it yourself."
    data = read_json_object(folder / MANIFEST, ExportError, "a zsbench export manifest", fix)
    found = data.get("format")
    if not isinstance(found, str) or not found.startswith(EXPORT_FORMAT_FAMILY):
        raise ExportError(f"{folder / MANIFEST} has format {found!r}, expected {FORMAT!r} (or an older {EXPORT_FORMAT_FAMILY}*). {fix}")


def export_model(config: ExportConfig, log: Log = lambda message: None) -> ExportResult:
    """Exports `vision.onnx` and `text.onnx`, checks them against PyTorch fp32 with ONNX Runtime,
    and publishes the folder (with manifest.json and parity.json) atomically.

    Raises:
        ExportError: unsupported model, unusable output folder, full disk, untraceable model.
        ParityError: a graph fails parity; the folder is still published, with `passed: false`.
    """
    ref = config.model
    require_exportable(ref.model_type, "zsbench export")
    device = resolve_device(config.device)
    precision = export_precision(resolve_precision(config.precision, device))
    folder = config.output_folder(precision)
    wanted = f"{ref.model} ({precision}) from {ref.pretrained}"
    # A folder holding another model or precision is refused before gigabytes of weights are read;
    # the checkpoint fingerprint is compared once the model is loaded.
    _check_out_folder(folder, None, wanted, config.force, (ref.model_type, export_graph_name(ref.model), precision))
    log(f"Loading {ref.model} from {ref.pretrained} ({precision}, {device})")
    model, transform, tokenizer = ref.load(device, precision)
    assert isinstance(model, InternVL)
    fingerprint = fingerprint_checkpoint(ref.checkpoint(), tokenizer.model_file, model.config.to_hf_dict())
    identity = (ref.model_type, export_graph_name(ref.model), fingerprint.digest, precision)
    _check_out_folder(folder, identity, wanted, config.force)

    opset = config.opset if config.opset is not None else default_opset(precision)
    start = time.perf_counter()
    with staged_folder(folder) as staging:
        log(f"Exporting to {folder} (opset {opset})")
        graphs, policy = export_graphs(model, staging, opset, precision, device, log)
        export_seconds = time.perf_counter() - start
        model_config, preprocess = model.config.to_hf_dict(), transform_config(model, ref.model)
        # One copy of the weights at a time: an fp32 export's model is itself the reference (read from disk
        # once; `pop` leaves compute_reference its only holder, which frees it before ONNX Runtime runs),
        # an fp16 export's reference is loaded in fp32 once the fp16 model is gone.
        exported = [(model, transform, tokenizer)] if precision == "fp32" else []
        del model
        free_memory()
        log("Checking parity against PyTorch fp32 with ONNX Runtime")
        probes, reference = compute_reference(exported.pop if exported else lambda: ref.load(device, "fp32"), config.probes, device, log)
        report = onnx_parity(probes, reference, {graph: staging / spec.file for graph, spec in graphs.items()}, folder,
                              device, precision, config.probes, config.thresholds, log)
        report = report.about({name: digest for spec in graphs.values() for name, digest in spec.sha256.items()},
                              fingerprint.digest)
        manifest = ExportManifest(
            model_type=ref.model_type,
            model_name=ref.model,
            pretrained=str(ref.checkpoint().resolve()),
            tokenizer=str(Path(ref.tokenizer).resolve()) if ref.tokenizer else None,
            model_config=str(Path(ref.model_config).resolve()) if ref.model_config else None,
            checkpoint=fingerprint,
            config=model_config,
            preprocess=preprocess,
            text={"context_length": tokenizer.context_length, "pad_id": tokenizer.pad_id, "bos_id": tokenizer.bos_id,
                  "eos_id": tokenizer.eos_id, "prefix": tokenizer.prefix, "tokenizer_file": str(tokenizer.model_file.resolve())},
            precision=precision,
            opset=opset,
            graphs=graphs,
            graph_policy=policy,
            exporter={"name": "torch.onnx.export(dynamo=True)", "optimize": True, "external_data": True},
            versions=package_versions(),
            export_device=str(device),
            export_seconds=round(export_seconds, 2),
            parity_passed=report.passed,
        )
        write_json_atomic(staging / PARITY, report.to_dict())
        write_json_atomic(staging / MANIFEST, manifest.to_dict(folder))
    report.raise_if_failed()
    log(report.summary())
    return ExportResult(folder, manifest, report)


def transform_config(model: InternVL, model_name: str) -> dict[str, object]:
    """The `PreprocessConfig` of `model_name` as a dict (what the manifest records)."""
    from zsbench.models import INTERNVL_MODELS, PreprocessConfig
    from zsbench.models.transform import task_resize_mode

    spec = INTERNVL_MODELS.get(model_name)
    return PreprocessConfig(model.config.image_size, task_resize_mode(spec.task)).to_dict()


def recorded_parity_settings(artifact: Path) -> tuple[ProbeConfig, ParityThresholds | None]:
    """The probes and thresholds of an export's last parity check (the defaults when it has none)."""
    if not (artifact / PARITY).exists():
        return ProbeConfig(), None
    previous = read_json(artifact / PARITY, "parity report")
    return ProbeConfig.from_dict(previous["probes"]), ParityThresholds.from_dict(previous["thresholds"])


def check_artifact_parity(
    artifact: Path,
    backend: ExportedBackend = "onnx",
    device: str = "auto",
    engines: Path | None = None,
    log: Log = lambda message: None,
) -> ParityReport:
    """Reruns the parity check of an export folder (ONNX Runtime) or of its engines (TensorRT),
    with the probes recorded in its parity.json, and rewrites that parity.json."""
    manifest = load_export_manifest(artifact)
    probe_config, thresholds = recorded_parity_settings(artifact)
    torch_device = resolve_device(device)
    if backend == "trt":
        from zsbench.export.checking import engine_parity
        from zsbench.export.trt_build import default_engine_dir, update_engine_parity
        from zsbench.runtime.engine_manifest import load_engine_manifest

        engine_folder = engines or default_engine_dir(artifact)
        report = engine_parity(manifest, engine_folder, load_engine_manifest(engine_folder), torch_device, probe_config,
                               thresholds, log=log)
        update_engine_parity(engine_folder, report)
    else:
        log(f"Loading {manifest.model_name} in fp32 from {manifest.pretrained}")
        probes, reference = compute_reference(lambda: load_reference_model(manifest, torch_device), probe_config, torch_device, log)
        # The report names the files as checked now; eval also requires them to be the files the
        # manifest recorded, so a graph edited after the export never runs, whatever its parity.
        checked = file_digests(artifact, list(manifest.file_digests()))
        report = onnx_parity(probes, reference, graph_files(manifest, artifact), artifact, torch_device, manifest.precision,
                              probe_config, thresholds, log).about(checked, manifest.checkpoint.digest)
        write_json_atomic(artifact / PARITY, report.to_dict())
        write_json_atomic(artifact / MANIFEST, replace(manifest, parity_passed=report.passed).to_dict(artifact))
    return report
