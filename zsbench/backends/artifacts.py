"""Finding (or making) the export an ONNX or TensorRT backend runs, and refusing the wrong one.

`--export_dir` (`BackendOptions.export_root`) names either one export folder (it holds a
manifest.json: `zsbench export --out X` then `zsbench eval --export_dir X`) or a folder of
exports (default: export/), in which the default name `<graph>-<checkpoint>-<precision>` is
looked up first (`<graph>`: the model name without its task, as `internvl_c_hf`, so the
classification and retrieval names of a checkpoint share one export), then any sub-folder
holding an export of these graphs, checkpoint and precision
(so `--export_dir` may also name X's parent). `--engine_dir` works the same way for engine
folders (default: engines/), matching engines built from the export in use.

An export is used only if its manifest names the requested model, precision and the
checkpoint as it is on disk now (fingerprint), its graph files have the SHA-256 digests the
manifest records, and -- unless the parity gate is off -- its parity.json shows a passed check
of those very files and that checkpoint. A missing export is made on the spot (in the folder of
exports), with a message saying so and how long it took.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from zsbench.errors import ExportError, ParityError
from zsbench.models.families import require_exportable
from zsbench.models.ref import ModelRef
from zsbench.runtime.trust import check_verdict, verify_files
from zsbench.types import export_precision

if TYPE_CHECKING:
    from zsbench.export import ExportManifest


def _ignore(message: str) -> None:
    del message


@dataclass(frozen=True)
class BackendOptions:
    """How engine backends find their artifacts and whether they trust them. `export_root` and
    `engine_root`: one artifact folder, or a folder of them (see the module docstring)."""

    parity_gate: bool = True
    export_root: Path = Path("export")
    engine_root: Path = Path("engines")
    log: Callable[[str], None] = field(default=_ignore, compare=False)


def checkpoint_identity(ref: ModelRef, precision: str) -> tuple[str, str, str, str]:
    """What an export of `ref` in `precision` must record: type, graph name (both tasks of a
    checkpoint share one export), checkpoint digest, precision."""
    from zsbench.export.fingerprint import fingerprint_checkpoint
    from zsbench.models.factory import INTERNVL_MODELS, resolve_internvl_config
    from zsbench.models.families.internvl import export_graph_name
    from zsbench.models.tokenizer import find_tokenizer_file

    pretrained = ref.checkpoint()
    spec = INTERNVL_MODELS.get(ref.model)
    config = resolve_internvl_config(spec, pretrained, Path(ref.model_config) if ref.model_config else None)
    tokenizer = find_tokenizer_file(Path(ref.tokenizer) if ref.tokenizer else None, pretrained)
    digest = fingerprint_checkpoint(pretrained, tokenizer, config.to_hf_dict()).digest
    return (ref.model_type, export_graph_name(ref.model), digest, precision)


def artifact_folder(root: Path, default_name: str, matches: Callable[[Path], bool]) -> Path:
    """Where the artifact is under `--export_dir`/`--engine_dir` `root`: `root` itself when it is an
    artifact folder (holds manifest.json); else `root/default_name` when that exists; else the first
    sub-folder (by name) whose manifest `matches`; else `root/default_name` (where a new one goes)."""
    from zsbench.artifact_paths import MANIFEST

    if (root / MANIFEST).is_file():
        return root
    if (root / default_name / MANIFEST).is_file() or not root.is_dir():
        return root / default_name
    found = (sub for sub in sorted(root.iterdir()) if (sub / MANIFEST).is_file() and matches(sub))
    return next(found, root / default_name)


def _is_export_of(identity: tuple[str, str, str, str]) -> Callable[[Path], bool]:
    from zsbench.errors import ZsbenchError
    from zsbench.export import load_export_manifest

    def matches(folder: Path) -> bool:
        try:
            return load_export_manifest(folder).identity() == identity
        except ZsbenchError:  # another tool's or a damaged folder: not the one sought
            return False

    return matches


def find_or_export(ref: ModelRef, precision: str, device: torch.device, options: BackendOptions) -> tuple[Path, ExportManifest]:
    """The export folder and manifest of `ref` in `precision` under `options.export_root`, exported if missing.

    Raises:
        ExportError: the folder holds another model, precision or checkpoint, or a graph file that is not
            the one its manifest records (`zsbench.runtime.trust.verify_files`).
        ParityError: the gate is on and parity.json does not show a passed check of these very files and
            this checkpoint (`zsbench.runtime.trust.check_verdict`).
    """
    from zsbench.export import ExportConfig, export_model, load_export_manifest
    from zsbench.artifact_paths import MANIFEST
    from zsbench.export.onnx_export import default_opset
    from zsbench.export.pipeline import default_export_dir

    require_exportable(ref.model_type, "The onnx and trt backends")
    precision = export_precision(precision)
    identity = checkpoint_identity(ref, precision)
    # Named after --pretrained as given (a hub id's name, not its snapshot's hash), as `zsbench export` names it.
    default_name = default_export_dir(ref.model, Path(ref.pretrained), precision).name
    folder = artifact_folder(options.export_root, default_name, _is_export_of(identity))
    if not (folder / MANIFEST).is_file():
        options.log(f"No {precision} export of {ref.model} in {folder}: exporting it now.")
        start = time.perf_counter()
        config = ExportConfig(ref, out=folder, precision=precision, device=str(device))
        try:
            export_model(config, log=options.log)
        except ParityError:
            if options.parity_gate:
                raise
        options.log(f"Exported {folder} in {time.perf_counter() - start:.1f}s.")
    manifest = load_export_manifest(folder)
    if manifest.identity() != identity:
        raise ExportError(
            f"{folder} holds the export of {manifest.describe()}, which is not {ref.model} ({precision}) from "
            f"{ref.pretrained} as it is on disk now. Point --export_dir at the export of this model and precision, "
            f"or re-export it with `zsbench export --model {ref.model} --pretrained {ref.pretrained} "
            f"--precision {precision} --force`."
        )
    if manifest.opset < default_opset(precision):
        # Still correct (parity said so), only slower: say how to get the faster graph, don't force it.
        options.log(
            f"{folder} is an opset-{manifest.opset} export; `zsbench export --model {ref.model} --pretrained "
            f"{ref.pretrained} --precision {precision} --force` re-exports it at opset {default_opset(precision)}, "
            "which ONNX Runtime runs faster."
        )
    verify_files(folder, manifest.file_digests(), ExportError, manifest.reexport_fix(folder))
    if options.parity_gate:
        check_verdict(folder, manifest.file_digests(), manifest.checkpoint.digest,
                      f"Re-check it with `zsbench parity --artifact {folder}`, or pass --no-parity-gate to use it anyway.")
    return folder, manifest


def preprocessing(manifest: ExportManifest, ref: ModelRef) -> tuple[Callable, Callable]:
    """The image transform of `ref`'s task at the export's image size and normalisation, and the
    checkpoint's tokenizer (no weights are read).

    The resize mode is `ref`'s, not the manifest's: the classification and retrieval names of a
    checkpoint share one export, made by whichever came first. The tokenizer is found where `ref`
    says now (the manifest's fingerprint covered its bytes, so a checkpoint folder that moved
    still matches).
    """
    from zsbench.models import INTERNVL_MODELS, InternVLConfig, InternVLTokenizer, PreprocessConfig, build_transform
    from zsbench.models.tokenizer import find_tokenizer_file
    from zsbench.models.transform import task_resize_mode

    recorded = PreprocessConfig.from_dict(manifest.preprocess)
    transform = build_transform(replace(recorded, resize_mode=task_resize_mode(INTERNVL_MODELS.get(ref.model).task)))
    config = InternVLConfig.from_hf_dict(manifest.config, source=f"{manifest.model_name} export manifest")
    tokenizer_file = find_tokenizer_file(Path(ref.tokenizer) if ref.tokenizer else None, ref.checkpoint())
    tokenizer = InternVLTokenizer(tokenizer_file, config.text, manifest.text["context_length"], manifest.text["prefix"])
    return transform, tokenizer
