"""Running the parity checks: the PyTorch fp32 reference, then the very encoders eval runs
(`OnnxEncoder` for the graphs, `TrtEncoder` for the engines), compared by `parity.py`."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

import torch

from zsbench.errors import BackendUnavailableError, ExportError
from zsbench.export.fingerprint import fingerprint_checkpoint
from zsbench.export.manifest import ExportManifest
from zsbench.export.parity import Embeddings, ParityReport, ParityThresholds, compare_embeddings, reference_embeddings, run_probes
from zsbench.export.config import ProbeConfig
from zsbench.export.probes import ProbeSet, build_probes
from zsbench.models import InternVL
from zsbench.runtime.engine_manifest import EngineManifest

Log = Callable[[str], None]


def _silent(message: str) -> None:
    del message


def free_memory() -> None:
    """Returns the memory of dropped models (Python cycles, the GPU allocator's cache)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def compute_reference(
    load: Callable[[], tuple[torch.nn.Module, Callable, Callable]], probe_config: ProbeConfig, device: torch.device,
    log: Log = _silent,
) -> tuple[ProbeSet, Embeddings]:
    """Loads the fp32 model with `load`, builds the probes with its transform and tokenizer, embeds
    them (TF32 off), and frees the model before returning, so that the backend under test never
    shares memory with it. `log` gets one progress line per stage."""
    model, transform, tokenizer = load()
    probes = build_probes(transform, tokenizer, probe_config)
    log(f"Parity: PyTorch fp32 reference on {device}: {len(probes.image_names)} probe images, {len(probes.texts)} prompts")
    reference = reference_embeddings(model, probes, device)
    del model
    free_memory()
    return probes, reference


def graph_files(manifest: ExportManifest, folder: Path) -> dict[str, Path]:
    """Each graph's .onnx file in an export folder."""
    return {graph: folder / spec.file for graph, spec in manifest.graphs.items()}


def load_reference_model(manifest: ExportManifest, device: torch.device) -> tuple[InternVL, Callable, Callable]:
    """Loads the export's PyTorch model in fp32 from the manifest's checkpoint information.

    Raises:
        ExportError: the checkpoint changed since the export (its fingerprint differs).
    """
    model, transform, tokenizer = manifest.model_ref().load(device, "fp32")
    assert isinstance(model, InternVL)
    now = fingerprint_checkpoint(Path(manifest.pretrained), tokenizer.model_file, model.config.to_hf_dict())
    if now.digest != manifest.checkpoint.digest:
        raise ExportError(
            f"The checkpoint {manifest.pretrained} changed since it was exported (fingerprint {now.short}, the export "
            f"was made from {manifest.checkpoint.short}). Re-export it with `zsbench export --force`."
        )
    return model, transform, tokenizer


def onnx_parity(
    probes: ProbeSet,
    reference: Embeddings,
    graphs: dict[str, Path],
    artifact: Path,
    device: torch.device,
    precision: str,
    probe_config: ProbeConfig,
    thresholds: ParityThresholds | None,
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
        reference_name=f"torch {torch.__version__} fp32 on {device} (TF32 off)",
        probe_config=probe_config,
    )




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
    log(f"Checking engine parity against PyTorch fp32 on {device}")
    probes, reference = compute_reference(lambda: load_reference_model(export, device), probe_config, device, log)
    encoder = TrtEncoder(engine_folder, engines, device)
    log(f"Parity: the engines in {engine_folder} on {device}: {len(probes.image_names)} probe images, {len(probes.texts)} prompts")
    try:
        candidate = run_probes(encoder, probes)
        backend = encoder.runtime_label()
    finally:
        encoder.close()
    return compare_embeddings(
        reference, candidate, probes, thresholds or ParityThresholds.for_precision(export.precision),
        artifact=label or str(engine_folder), backend=backend, precision=export.precision,
        reference_name=f"torch {torch.__version__} fp32 on {device} (TF32 off)", probe_config=probe_config,
    ).about(engines.engine_sha256, export.checkpoint.digest)
