"""Finding (or making) the export an ONNX or TensorRT backend runs, through the artifact store
(`zsbench.export.store`: identity, folder names, lookup under `--export_dir`, trust checks).

A missing export is made on the spot (in the folder of exports), with a message saying so and how
long it took; an export that is there runs only once the store has shown it is this model's, its
files are the ones it recorded and (with the parity gate) a passed parity check vouches for them.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from zsbench.artifact_paths import MANIFEST
from zsbench.backends import BackendOptions
from zsbench.errors import ParityError
from zsbench.types import export_precision

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch

    from zsbench.export import ExportManifest
    from zsbench.models.ref import ModelRef


def find_or_export(ref: ModelRef, precision: str, device: torch.device, options: BackendOptions,
                   for_engines: bool = False) -> tuple[Path, ExportManifest]:
    """The export folder and manifest of `ref` in `precision` under `options.export_root`, exported if missing
    (`for_engines`: the graphs TensorRT engines are built from, `PrecisionSpec.target`; a missing quantized export
    is calibrated on the default, synthetic set).

    Raises:
        NotExportableError: the model does not export.
        ExportError: the folder holds another model, precision or checkpoint, or a graph file that is not
            the one its manifest records.
        ParityError: the gate is on and parity.json does not show a passed check of these very files and
            this checkpoint.
    """
    from zsbench.export import ExportConfig, export_model
    from zsbench.export.onnx_export import default_opset
    from zsbench.export.store import export_identity, find_export, trusted_export
    from zsbench.precisions import PRECISIONS

    precision = export_precision(precision)
    target = PRECISIONS.get(precision).target(for_engines)
    identity = export_identity(ref, precision, "The onnx and trt backends", target)
    folder = find_export(options.export_root, ref, identity)
    if not (folder / MANIFEST).is_file():
        options.log(f"No {precision} export of {ref.model} in {folder}: exporting it now.")
        start = time.perf_counter()
        try:
            export_model(ExportConfig(ref, out=folder, precision=precision, device=str(device), for_engines=for_engines),
                         log=options.log)
        except ParityError:
            if options.parity_gate:
                raise
        options.log(f"Exported {folder} in {time.perf_counter() - start:.1f}s.")
    manifest = trusted_export(folder, ref, identity, options.parity_gate)
    if manifest.opset < default_opset(precision, target):
        # Still correct (parity said so), only slower: say how to get the faster graph, don't force it.
        options.log(
            f"{folder} is an opset-{manifest.opset} export; `zsbench export --model_type {ref.model_type} --model {ref.model} "
            f"--pretrained {ref.pretrained} --precision {precision} --force` re-exports it at opset {default_opset(precision, target)}, "
            "which ONNX Runtime runs faster."
        )
    return folder, manifest


def export_inputs(manifest: ExportManifest, ref: ModelRef) -> tuple[Callable, Callable[[str], Callable]]:
    """The tokenizer that feeds an export's graphs and its image transforms (task -> transform), built from the
    manifest's records and the checkpoint's tokenizer, without reading weights.

    The transform is the run's task's, over the preprocessing the export recorded: model names sharing the
    export (InternVL's classification and retrieval names) each run with their task's transform.
    """
    from zsbench.models.families import export_spec, get_family

    family = get_family(ref.model_type)
    tokenizer = export_spec(ref.model_type, ref.model, "The onnx and trt backends").tokenizer(ref, manifest.config, manifest.text)
    return tokenizer, partial(family.transform, manifest.preprocess)
