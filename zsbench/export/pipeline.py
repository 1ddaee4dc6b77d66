"""`export_model` (checkpoint -> checked ONNX export folder) and `check_export_parity` (rerun the check).

Whatever the model family, the graphs, their lowering, the parity reference and what the manifest
records come from the family's `ExportSpec`; the folder's name and the refusal to write over
another model's export from the artifact store (`zsbench.export.store`):
`export/<graph>-<checkpoint name>-<precision>` (`-trt` for the graphs engines of a quantized precision are built from).
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from zsbench.export.checking import (
    compute_reference,
    export_reference,
    free_memory,
    graph_files,
    onnx_parity,
    recorded_parity_settings,
    text_padding,
)
from zsbench.export.fingerprint import fingerprint_checkpoint
from zsbench.export.manifest import MANIFEST, PARITY, ExportManifest, load_export_manifest, package_version
from zsbench.export.config import ExportConfig
from zsbench.export.onnx_export import default_opset, export_graphs
from zsbench.export.parity import ParityReport
from zsbench.export.probes import build_probes
from zsbench.export.quantize.calibration import calibration_set
from zsbench.export.quantize.graphs import failure_advice, quantize_graphs
from zsbench.export.quantize.record import QuantizedGraph, Quantizer
from zsbench.export.staging import staged_folder
from zsbench.export.store import ExportIdentity, check_writable
from zsbench.jsonfiles import write_json_atomic
from zsbench.models.families import export_spec, get_family
from zsbench.precisions import PRECISIONS
from zsbench.registry import import_attribute
from zsbench.runtime.trust import file_digests
from zsbench.types import export_precision, resolve_device, resolve_precision

Log = Callable[[str], None]
_VERSIONED = ("torch", "onnx", "onnxruntime", "onnxscript", "onnx-ir", "numpy", "zsbench", "nvidia-modelopt")
TRACED = ".fp32-trace"  # the staging sub-folder holding the fp32 graphs a quantized export is made from


@dataclass(frozen=True)
class ExportResult:
    """A published export folder, its manifest and its parity report."""

    folder: Path
    manifest: ExportManifest
    parity: ParityReport


def package_versions(libraries: tuple[str, ...] = ()) -> dict[str, str | None]:
    """Python and the versions of the packages an export depends on (recorded in the manifest), the family's
    own `libraries` included."""
    return {"python": sys.version.split()[0], **{name: package_version(name) for name in (*_VERSIONED, *libraries)}}


def export_model(config: ExportConfig, log: Log = lambda message: None) -> ExportResult:
    """Exports the graphs of the model's export spec (quantized ones: traced in fp32, then quantized, calibrated on
    `config.calibration`), checks them against its PyTorch reference with ONNX Runtime, and publishes the folder
    (with manifest.json and parity.json) atomically.

    Raises:
        NotExportableError: the model does not export (said before anything is read).
        ExportError: unusable output folder, full disk, untraceable model, calibration options for a precision
            that is not quantized, a `--keep_fp32` pattern that matches nothing.
        BackendUnavailableError: the precision's quantizer for this target is not installed (Model Optimizer).
        ParityError: a graph fails parity; the folder is still published, with `passed: false` (quantized graphs:
            the message names the nodes with the most quantization noise and the `--keep_fp32` options).
    """
    ref = config.model
    spec = export_spec(ref.model_type, ref.model, "zsbench export")
    family = get_family(ref.model_type)
    device = resolve_device(config.device)
    precision = export_precision(resolve_precision(config.precision, device))
    kind = PRECISIONS.get(precision)
    config.check_calibration(kind.quantized)
    target = kind.target(config.for_engines)
    quantizer_name = kind.quantizer_for(target)
    quantizer: Quantizer | None = import_attribute(quantizer_name) if quantizer_name else None
    if quantizer is not None:
        quantizer.check_installed()  # before the model is loaded
    folder = config.output_folder(precision, target)
    wanted = f"{ref.model} ({precision}{' for TensorRT engines' if target else ''}) from {ref.pretrained}"
    # A folder holding another model or precision is refused before the checkpoint is read; the
    # checkpoint fingerprint is compared once it is.
    identity = ExportIdentity(ref.model_type, spec.graph, "", precision, target)
    check_writable(folder, identity, wanted, config.force, checkpoint_known=False)
    record = family.record(ref)
    fingerprint = fingerprint_checkpoint(record.path, record.tokenizer_file, record.config)
    check_writable(folder, replace(identity, checkpoint=fingerprint.digest), wanted, config.force, checkpoint_known=True)
    trace_precision = kind.trace_in or precision
    log(f"Loading {ref.model} from {ref.pretrained} ({trace_precision}, {device})")
    loaded = ref.load(device, trace_precision)
    padding = text_padding(spec, record.text)

    opset = config.opset if config.opset is not None else default_opset(precision, target)
    start = time.perf_counter()
    with staged_folder(folder) as staging:
        log(f"Exporting to {folder} (opset {opset}{f', {trace_precision} graphs quantized to {precision}' if quantizer else ''})")
        traced_folder = staging / TRACED if quantizer else staging
        traced_folder.mkdir(exist_ok=True)
        graphs, policy = export_graphs(loaded.model, spec, loaded.tokenizer, family.input_size(loaded.model).image_size,
                                       int(record.text["context_length"]), traced_folder, opset, trace_precision, device, log)
        traced = {name: traced_folder / item.file for name, item in graphs.items()}
        quantized: dict[str, QuantizedGraph] = {}
        if quantizer:
            transform = family.transform(loaded.preprocess, family.default_task(ref.model))
            calibration = calibration_set(transform, loaded.tokenizer, padding, config.calibration,
                                          build_probes(transform, loaded.tokenizer, config.probes, padding))
            log(f"Calibrating on {calibration.name}: {sum(map(len, calibration.batches['vision']))} images, "
                f"{len(calibration.texts)} prompts, none of them a parity probe")
            graphs, quantized = quantize_graphs(quantizer, traced, staging, spec, spec.policy(precision).keeping(config.keep_fp32),
                                                precision, calibration, log)
            policy = {name: item.graph_policy() for name, item in quantized.items()}
        export_seconds = time.perf_counter() - start
        preprocess = loaded.preprocess
        # One copy of the weights at a time: a model loaded in the reference precision is itself the reference (read
        # from disk once; `pop` leaves compute_reference its only holder, which frees it before ONNX Runtime runs);
        # otherwise the reference is loaded once the exported model is gone.
        exported = [loaded] if trace_precision == spec.reference else []
        del loaded
        free_memory()
        log(f"Checking parity against PyTorch {spec.reference} with ONNX Runtime")
        probes, reference = compute_reference(exported.pop if exported else lambda: ref.load(device, spec.reference), family,
                                              ref.model, padding, config.probes, device, spec.reference, log)
        report = onnx_parity(probes, reference, {graph: staging / item.file for graph, item in graphs.items()}, folder,
                             device, precision, config.probes, config.thresholds, spec.reference, log)
        report = report.about({name: digest for item in graphs.values() for name, digest in item.sha256.items()},
                              fingerprint.digest)
        if quantizer:
            if not report.passed:
                log("Parity failed: ranking the quantized nodes by their quantization noise")
                report = replace(report, advice=failure_advice(report, traced, staging, spec, calibration))
            shutil.rmtree(traced_folder)  # the fp32 trace served the quantizer and the per-node report; it is not published
        manifest = ExportManifest(
            model_type=ref.model_type,
            model_name=ref.model,
            graph=spec.graph,
            pretrained=str(ref.checkpoint().resolve()),
            tokenizer=str(Path(ref.tokenizer).resolve()) if ref.tokenizer else None,
            model_config=str(Path(ref.model_config).resolve()) if ref.model_config else None,
            checkpoint=fingerprint,
            config=record.config,
            preprocess=preprocess,
            text=record.text,
            precision=precision,
            opset=opset,
            graphs=graphs,
            graph_policy=policy,
            exporter={"name": "torch.onnx.export(dynamo=True)", "optimize": True, "external_data": True},
            versions=package_versions(spec.libraries),
            export_device=str(device),
            export_seconds=round(export_seconds, 2),
            parity_passed=report.passed,
            target=target,
            quantization={name: item.to_dict() for name, item in quantized.items()},
        )
        write_json_atomic(staging / PARITY, report.to_dict())
        write_json_atomic(staging / MANIFEST, manifest.to_dict(folder))
    report.raise_if_failed()
    log(report.summary())
    return ExportResult(folder, manifest, report)


def check_export_parity(artifact: Path, device: str = "auto", log: Log = lambda message: None) -> ParityReport:
    """Reruns the parity check of an export folder's graphs (ONNX Runtime) with the probes recorded in its
    parity.json, and rewrites that parity.json (and the manifest's verdict)."""
    manifest = load_export_manifest(artifact)
    spec = export_spec(manifest.model_type, manifest.model_name, "zsbench parity")
    probe_config, thresholds = recorded_parity_settings(artifact)
    torch_device = resolve_device(device)
    log(f"Loading {manifest.model_name} in {spec.reference} from {manifest.pretrained}")
    probes, reference = export_reference(manifest, spec, probe_config, torch_device, log)
    # The report names the files as checked now; eval also requires them to be the files the
    # manifest recorded, so a graph edited after the export never runs, whatever its parity.
    checked = file_digests(artifact, list(manifest.file_digests()))
    report = onnx_parity(probes, reference, graph_files(manifest, artifact), artifact, torch_device, manifest.precision,
                         probe_config, thresholds, spec.reference, log).about(checked, manifest.checkpoint.digest)
    write_json_atomic(artifact / PARITY, report.to_dict())
    write_json_atomic(artifact / MANIFEST, replace(manifest, parity_passed=report.passed).to_dict(artifact))
    return report
