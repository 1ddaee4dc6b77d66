"""Running the parity checks: the PyTorch reference the family's export spec names (fp32, TF32 off), then the
very encoders eval runs (`OnnxEncoder` for the graphs, `TrtEncoder` for the engines), compared by `parity.py`."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

import torch

from zsbench.artifact_paths import PARITY
from zsbench.errors import BackendUnavailableError, ExportError
from zsbench.export.manifest import ExportManifest, read_json
from zsbench.export.parity import Embeddings, ParityReport, ParityThresholds, compare_embeddings, reference_embeddings, run_probes
from zsbench.export.config import ProbeConfig
from zsbench.export.probes import ProbeSet, TextPadding, build_probes
from zsbench.export.store import checkpoint_fingerprint
from zsbench.models.export_spec import ExportSpec
from zsbench.models.families import LoadedClip, ModelFamily, export_spec, get_family
from zsbench.runtime.engine_manifest import EngineManifest

Log = Callable[[str], None]


def _silent(message: str) -> None:
    del message


def free_memory() -> None:
    """Returns the memory of dropped models (Python cycles, the GPU allocator's cache)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def recorded_parity_settings(artifact: Path) -> tuple[ProbeConfig, ParityThresholds | None]:
    """The probes and thresholds of an export's last parity check (the defaults when it has none)."""
    if not (artifact / PARITY).exists():
        return ProbeConfig(), None
    previous = read_json(artifact / PARITY, "parity report")
    return ProbeConfig.from_dict(previous["probes"]), ParityThresholds.from_dict(previous["thresholds"])


def text_padding(spec: ExportSpec, text: dict[str, object]) -> TextPadding | None:
    """How the probes pad texts to the full context: only for a text graph of any length (`GraphIO.dynamic_length`)."""
    if not spec.io("text").dynamic_length:
        return None
    return TextPadding(int(text["context_length"]), int(text.get("pad_id", 0)))  # type: ignore[call-overload]


def compute_reference(
    load: Callable[[], LoadedClip], family: ModelFamily, model_name: str, padding: TextPadding | None,
    probe_config: ProbeConfig, device: torch.device, reference: str, log: Log = _silent,
) -> tuple[ProbeSet, Embeddings]:
    """Loads the reference model with `load`, builds the probes with its transform (the model name's task)
    and tokenizer, embeds them (TF32 off), and frees the model before returning, so that the backend under
    test never shares memory with it. `reference` names its precision; `log` gets one progress line per stage."""
    loaded = load()
    transform = family.transform(loaded.preprocess, family.default_task(model_name))
    probes = build_probes(transform, loaded.tokenizer, probe_config, padding)
    log(f"Parity: PyTorch {reference} reference on {device}: {len(probes.image_names)} probe images, {len(probes.texts)} prompts")
    embeddings = reference_embeddings(loaded.model, probes, device)
    del loaded
    free_memory()
    return probes, embeddings


def graph_files(manifest: ExportManifest, folder: Path) -> dict[str, Path]:
    """Each graph's .onnx file in an export folder."""
    return {graph: folder / spec.file for graph, spec in manifest.graphs.items()}


def export_reference(manifest: ExportManifest, spec: ExportSpec, probe_config: ProbeConfig,
                     device: torch.device, log: Log = _silent) -> tuple[ProbeSet, Embeddings]:
    """The probes and the reference embeddings of an export: its PyTorch model in the spec's reference precision,
    loaded from the manifest's checkpoint information once the checkpoint is shown unchanged.

    Raises:
        ExportError: the checkpoint changed since the export (its fingerprint differs).
    """
    ref = manifest.model_ref()
    now = checkpoint_fingerprint(ref)
    if now.digest != manifest.checkpoint.digest:
        raise ExportError(
            f"The checkpoint {manifest.pretrained} changed since it was exported (fingerprint {now.short}, the export "
            f"was made from {manifest.checkpoint.short}). Re-export it with `zsbench export --force`."
        )
    family = get_family(ref.model_type)
    return compute_reference(lambda: ref.load(device, spec.reference), family, ref.model, text_padding(spec, manifest.text),
                             probe_config, device, spec.reference, log)


def onnx_parity(
    probes: ProbeSet,
    reference: Embeddings,
    graphs: dict[str, Path],
    artifact: Path,
    device: torch.device,
    precision: str,
    probe_config: ProbeConfig,
    thresholds: ParityThresholds | None,
    spec_reference: str,
    log: Log = _silent,
) -> ParityReport:
    """Parity of the graphs through `OnnxEncoder`, the encoder `--backend onnx` evaluates with (`log`: one
    progress line per graph)."""
    from zsbench.runtime.onnxrt import OnnxEncoder

    encoder = OnnxEncoder(graphs, device, precision, artifact)
    # One session at a time: each holds its own copy of the graph's weights.
    log(f"Parity: {graphs['vision'].name} ({precision}) on ONNX Runtime: {len(probes.image_names)} probe images")
    image = run_probes(encoder, probes, ("vision",)).image
    backend = encoder.runtime_label()
    encoder.close("vision")
    log(f"Parity: {graphs['text'].name} ({precision}) on ONNX Runtime: {len(probes.texts)} prompts")
    text = run_probes(encoder, probes, ("text",)).text
    encoder.close()
    return compare_embeddings(
        reference,
        Embeddings(image, text),
        probes,
        thresholds or ParityThresholds.for_precision(precision),
        artifact=str(artifact),
        backend=backend,
        precision=precision,
        reference_name=reference_name(spec_reference, device),
        probe_config=probe_config,
    )


def reference_name(precision: str, device: torch.device) -> str:
    """How a parity report names the PyTorch model it compared with."""
    return f"torch {torch.__version__} {precision} on {device} (TF32 off)"


def engine_parity(export: ExportManifest, engine_folder: Path, engines: EngineManifest, device: torch.device,
                  probe_config: ProbeConfig, thresholds: ParityThresholds | None, label: str | None = None,
                  log: Log = lambda message: None) -> ParityReport:
    """Parity of the engines in `engine_folder` (described by `engines`) through `TrtEncoder` on
    `device`, against the export's PyTorch model in fp32, with the same probes and thresholds as
    the ONNX graphs.

    Raises:
        BackendUnavailableError: no GPU (TensorRT engines run only on one).
        EngineError: the engines cannot run on this GPU or with this TensorRT.
    """
    from zsbench.runtime.trt import TrtEncoder

    if device.type != "cuda" or not torch.cuda.is_available():
        raise BackendUnavailableError("Engine parity runs the engines, which needs a CUDA GPU; torch sees none here.")
    spec = export_spec(export.model_type, export.model_name, "Engine parity")
    log(f"Checking engine parity against PyTorch {spec.reference} on {device}")
    probes, reference = export_reference(export, spec, probe_config, device, log)
    encoder = TrtEncoder(engine_folder, engines, device, export.precision)
    log(f"Parity: the engines in {engine_folder} on {device}: {len(probes.image_names)} probe images, {len(probes.texts)} prompts")
    try:
        candidate = run_probes(encoder, probes)
        backend = encoder.runtime_label()
    finally:
        encoder.close()
    return compare_embeddings(
        reference, candidate, probes, thresholds or ParityThresholds.for_precision(export.precision),
        artifact=label or str(engine_folder), backend=backend, precision=export.precision,
        reference_name=reference_name(spec.reference, device), probe_config=probe_config,
    ).about(engines.engine_sha256, export.checkpoint.digest)
