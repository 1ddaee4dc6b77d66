"""The artifact store: what an export or engine folder is (its identity), what it is called, how
`--export_dir` / `--engine_dir` find it, and what it must prove before it is written over or run.

Identity. An export is the graphs of one model family's graph name (`ExportSpec.graph`), from one
checkpoint (its fingerprint: files, tokenizer, config), in one precision, for one target (graphs every
runtime runs, or the Q/DQ graphs TensorRT engines of a quantized precision are built from:
`zsbench.precisions.ENGINE_TARGET`): `ExportIdentity`. Model names
that share a graph name (InternVL's classification and retrieval names) share one export, since the
task only chooses the image transform, which runs before the graphs. Engines are identified by the
export they were built from.

Folder names. `export/<graph>-<checkpoint name>-<precision>` (`-trt` appended for graphs made for engines), where the checkpoint name is the `.pth`
file's stem or the folder's name, with characters other than letters, digits, `.`, `_` and `-`
replaced by `_` (`export/internvl_g_hf-InternVL-14B-224px-fp16`, `export/ViT-B-32-vit_b_32-fp32`);
engines go to `engines/<export folder name>`.

Lookup. `--export_dir` names either one export folder (it holds a manifest.json: `zsbench export
--output_dir X` then `zsbench eval --export_dir X`) or a folder of exports, in which the default name is
looked up first, then any sub-folder holding an export of this identity. `--engine_dir` works the same
way for engine folders, matching engines built from the export in use.

Trust. A folder is written over only when it holds an export of the same model (or, with --force,
some zsbench export, never an unrelated folder). An export runs only if its manifest records this
identity, its graph files have the SHA-256 the manifest records, and (with the parity gate on) its
parity.json shows a passed check of those very files and this checkpoint; engines likewise
(`zsbench.runtime.trust` holds the checks themselves).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from zsbench.artifact_paths import MANIFEST
from zsbench.errors import EngineError, ExportError, ZsbenchError
from zsbench.export.fingerprint import Fingerprint, fingerprint_checkpoint
from zsbench.export.manifest import FORMAT, ExportManifest, load_export_manifest
from zsbench.jsonfiles import read_json_object
from zsbench.models.families import export_spec, get_family
from zsbench.models.ref import ModelRef
from zsbench.runtime.engine_manifest import EngineManifest, load_engine_manifest
from zsbench.runtime.trust import check_verdict, verify_files

EXPORT_ROOT = Path("export")
ENGINE_ROOT = Path("engines")
# Every format version of zsbench's export manifests starts with this ("zsbench-onnx-export/").
EXPORT_FORMAT_FAMILY = FORMAT.partition("/")[0] + "/"


@dataclass(frozen=True)
class ExportIdentity:
    """What makes two exports the same graphs: the family, its graph name, the checkpoint's fingerprint, the precision
    and the target ("" or `ENGINE_TARGET`)."""

    model_type: str
    graph: str
    checkpoint: str
    precision: str
    target: str = ""


def checkpoint_fingerprint(ref: ModelRef) -> Fingerprint:
    """The fingerprint of `ref`'s checkpoint as its family describes it (files, tokenizer, config; no weights read)."""
    record = get_family(ref.model_type).record(ref)
    return fingerprint_checkpoint(record.path, record.tokenizer_file, record.config)


def export_identity(ref: ModelRef, precision: str, what: str, target: str = "") -> ExportIdentity:
    """What an export of `ref` in `precision` for `target` must record (`what` names the asker in a refusal).

    Raises:
        NotExportableError: `ref`'s model does not export.
    """
    spec = export_spec(ref.model_type, ref.model, what)
    return ExportIdentity(ref.model_type, spec.graph, checkpoint_fingerprint(ref).digest, precision, target)


def manifest_identity(manifest: ExportManifest) -> ExportIdentity:
    """The identity an export manifest records."""
    return ExportIdentity(manifest.model_type, manifest.graph, manifest.checkpoint.digest, manifest.precision, manifest.target)


def default_export_dir(ref: ModelRef, precision: str, target: str = "", root: Path = EXPORT_ROOT) -> Path:
    """`root/<graph>-<checkpoint name>-<precision>[-<target>]` (see the module docstring), named after `--pretrained`
    as given (a hub id's name, not its snapshot's hash)."""
    graph = export_spec(ref.model_type, ref.model, "zsbench export").graph
    checkpoint = Path(ref.pretrained)
    stem = checkpoint.name if checkpoint.is_dir() or not checkpoint.suffix else checkpoint.stem
    suffix = f"-{target}" if target else ""
    return root / re.sub(r"[^A-Za-z0-9._-]", "_", f"{graph}-{stem}-{precision}{suffix}")


def default_engine_dir(export_folder: Path, root: Path = ENGINE_ROOT) -> Path:
    """`root/<export folder name>`."""
    return root / Path(export_folder).resolve().name


def find_artifact(root: Path, default_name: str, matches: Callable[[Path], bool]) -> Path:
    """Where the artifact is under `--export_dir`/`--engine_dir` `root`: `root` itself when it is an
    artifact folder (holds manifest.json); else `root/default_name` when that exists; else the first
    sub-folder (by name) whose manifest `matches`; else `root/default_name` (where a new one goes)."""
    if (root / MANIFEST).is_file():
        return root
    if (root / default_name / MANIFEST).is_file() or not root.is_dir():
        return root / default_name
    found = (sub for sub in sorted(root.iterdir()) if (sub / MANIFEST).is_file() and matches(sub))
    return next(found, root / default_name)


def find_export(root: Path, ref: ModelRef, identity: ExportIdentity) -> Path:
    """The folder under `--export_dir` `root` holding (or to hold) the export of `identity`."""

    def matches(folder: Path) -> bool:
        try:
            return manifest_identity(load_export_manifest(folder)) == identity
        except ZsbenchError:  # another tool's or a damaged folder: not the one sought
            return False

    return find_artifact(root, default_export_dir(ref, identity.precision, identity.target).name, matches)


def find_engines(root: Path, export_folder: Path) -> Path:
    """The folder under `--engine_dir` `root` holding (or to hold) the engines built from `export_folder`."""
    export = export_folder.resolve()

    def matches(candidate: Path) -> bool:
        try:
            return Path(load_engine_manifest(candidate).artifact) == export
        except EngineError:
            return False

    return find_artifact(root, default_engine_dir(export_folder).name, matches)


def check_writable(folder: Path, identity: ExportIdentity, wanted: str, force: bool, *, checkpoint_known: bool) -> None:
    """Refuses to write an export into a folder holding something else than an export of this model.

    `force` replaces another model's export, never a folder that is not an export at all (the whole
    folder is replaced, so a mistyped --output_dir must not wipe unrelated files). Without
    `checkpoint_known` (before the checkpoint is read) the checkpoint is not compared.
    """
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ExportError(f"--output_dir {folder} is a file; expected a folder for the export. Choose another --output_dir.")
    if not any(folder.iterdir()):
        return
    if not (folder / MANIFEST).is_file():
        raise ExportError(
            f"{folder} holds files but no {MANIFEST}: it is not a zsbench export, and exporting would replace it. "
            "Expected an empty or missing folder, or an earlier export. Choose another --output_dir, or empty it yourself."
        )
    if force:
        _check_is_export(folder)
        return
    try:
        existing = load_export_manifest(folder)
    except ExportError as err:
        raise ExportError(f"{folder} holds a damaged export ({err}). Pass --force to replace it.") from err
    found = manifest_identity(existing)
    if not checkpoint_known:
        found = replace(found, checkpoint=identity.checkpoint)
    if found != identity:
        raise ExportError(
            f"{folder} holds the export of {existing.describe()}; expected {wanted}. "
            "Pass --force to replace it, or choose another --output_dir."
        )


def _check_is_export(folder: Path) -> None:
    """Refuses (even with --force) a folder whose manifest.json is not a zsbench export manifest: some
    other tool's manifest.json must not make its folder deletable. Older export formats pass."""
    fix = "It is not a zsbench export, so --force will not replace it. Choose another --output_dir, or empty it yourself."
    data = read_json_object(folder / MANIFEST, ExportError, "a zsbench export manifest", fix)
    found = data.get("format")
    if not isinstance(found, str) or not found.startswith(EXPORT_FORMAT_FAMILY):
        raise ExportError(f"{folder / MANIFEST} has format {found!r}, expected {FORMAT!r} (or an older {EXPORT_FORMAT_FAMILY}*). {fix}")


def trusted_export(folder: Path, ref: ModelRef, identity: ExportIdentity, parity_gate: bool) -> ExportManifest:
    """The manifest of the export in `folder`, once it is shown to be `identity`'s, its graph files are the ones
    it recorded, and (with `parity_gate`) its parity.json vouches for them.

    Raises:
        ExportError: another model, precision or checkpoint; a graph file replaced or damaged.
        ParityError: the gate is on and no passed parity check of these files and this checkpoint is recorded.
    """
    manifest = load_export_manifest(folder)
    if manifest_identity(manifest) != identity:
        raise ExportError(
            f"{folder} holds the export of {manifest.describe()}, which is not {ref.model} ({identity.precision}) from "
            f"{ref.pretrained} as it is on disk now{' for TensorRT engines' if identity.target else ''}. Point --export_dir "
            f"at the export of this model and precision, or re-export it with `zsbench export --model_type {ref.model_type} "
            f"--model {ref.model} --pretrained {ref.pretrained} --precision {identity.precision}"
            f"{' --engine trt' if identity.target else ''} --force`."
        )
    verify_files(folder, manifest.file_digests(), ExportError, manifest.reexport_fix(folder))
    if parity_gate:
        check_verdict(folder, manifest.file_digests(), manifest.checkpoint.digest,
                      f"Re-check it with `zsbench parity --artifact {folder}`, or pass --no-parity-gate to use it anyway.")
    return manifest


def trusted_engines(folder: Path, engines: EngineManifest, export_folder: Path, export: ExportManifest, parity_gate: bool) -> None:
    """Checks (with `parity_gate`) that the engines' parity.json vouches for these very engine files and the export's checkpoint.

    Raises:
        ParityError: it does not.
    """
    if parity_gate:
        check_verdict(folder, engines.engine_sha256, export.checkpoint.digest,
                      f"Check them with `zsbench parity --artifact {export_folder} --backend trt --engines {folder}`, "
                      "or pass --no-parity-gate to use them anyway.")

