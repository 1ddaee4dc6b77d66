"""Backends (`--backend`): one registry entry per runtime (torch, onnxruntime, tensorrt), each a `BackendSpec`
saying which precisions it runs, whether it is usable here, how it loads a model, and, for runtimes of
exported artifacts, how it builds them ahead of time and re-checks their parity.

To add a backend: write `backends/<runtime>.py` defining `BACKEND = BackendSpec(...)` (its `Encoder`
subclass beside it, or in `zsbench/runtime/` when the export's parity check drives it too; import the
runtime inside its functions, so `zsbench --help` never loads it), and register it below by a
``"module:BACKEND"`` string. `--backend`, `bench --backends`, `demo --backends` and `parity --backend`
take their choices from `BACKENDS`; eval, bench and the demo load through `load_backend`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from zsbench.errors import BackendUnavailableError, UnsupportedPrecisionError
from zsbench.lazy import lazy_attributes
from zsbench.registry import Registry

if TYPE_CHECKING:
    import torch

    from zsbench.backends.base import LoadedModel
    from zsbench.export.parity import ParityReport
    from zsbench.models.ref import ModelRef

Log = Callable[[str], None]


def _ignore(message: str) -> None:
    del message


@dataclass(frozen=True)
class BackendOptions:
    """How backends of exported artifacts find them and whether they trust them. `export_root` and
    `engine_root`: one artifact folder, or a folder of them (`zsbench.export.store`)."""

    export_root: Path = Path("export")
    engine_root: Path = Path("engines")
    parity_gate: bool = True
    log: Log = field(default=_ignore, compare=False)


@dataclass(frozen=True)
class BackendSpec:
    """One `--backend`.

    Attributes:
        name: the `--backend` value.
        runtime: the library that runs it, as messages name it.
        precisions: the precisions it runs (`zsbench.precisions` names).
        exported: it runs exported graphs, so only models whose family exports them (`ExportSpec`).
        available: `device -> None` when usable there, else why not (the install command, or the device it needs).
        load: `(ref, device, precision, options) -> LoadedModel`: finds or builds its artifacts, applies the gates.
        build: `(ref, device, precision, options) -> folder`: makes (or finds) its artifacts ahead of time.
        check_parity: `(export folder, device, artifact folder or None, log) -> ParityReport`: re-checks its
            artifacts against PyTorch and records the verdict.
    """

    name: str
    runtime: str
    precisions: Callable[[], tuple[str, ...]]
    available: Callable[[torch.device], str | None]
    load: Callable[[ModelRef, torch.device, str, BackendOptions], LoadedModel]
    exported: bool = False
    build: Callable[[ModelRef, torch.device, str, BackendOptions], Path] | None = None
    check_parity: Callable[[Path, str, Path | None, Log], ParityReport] | None = None


BACKENDS: Registry[BackendSpec] = Registry("backend")
BACKENDS.add("torch", "zsbench.backends.pyt:BACKEND")
BACKENDS.add("onnx", "zsbench.backends.onnxrt:BACKEND")
BACKENDS.add("trt", "zsbench.backends.trt:BACKEND")


def exported_backends() -> list[str]:
    """The backends that run exported graphs."""
    return [name for name in BACKENDS.names() if BACKENDS.get(name).exported]


def checking_backends() -> list[str]:
    """The backends whose artifacts `zsbench parity` re-checks."""
    return [name for name in BACKENDS.names() if BACKENDS.get(name).check_parity is not None]


def check_precision(backend: str, precision: str) -> None:
    """Refuses a precision `backend` does not run.

    Raises:
        UnsupportedPrecisionError: naming the precisions it runs.
    """
    spec = BACKENDS.get(backend)
    runs = spec.precisions()
    if precision not in runs:
        elsewhere = [name for name in BACKENDS.names() if precision in BACKENDS.get(name).precisions()]
        raise UnsupportedPrecisionError(
            f"--precision {precision}: --backend {backend} ({spec.runtime}) runs {' or '.join(runs)}; {precision} runs on "
            f"--backend {' or '.join(elsewhere)}. Pass --precision {' or '.join(runs)}, or another --backend."
        )


def load_backend(
    backend: str, ref: ModelRef, device: torch.device, precision: str, options: BackendOptions | None = None
) -> LoadedModel:
    """Loads `ref` on `backend` and returns its encoder, tokenizer and transforms.

    Raises:
        BackendUnavailableError: the backend's runtime is not usable here (the message says how to install it).
        UnsupportedPrecisionError: the backend does not run `precision`.
    """
    spec = BACKENDS.get(backend)
    missing = spec.available(device)
    if missing is not None:
        raise BackendUnavailableError(missing)
    check_precision(backend, precision)
    return spec.load(ref, device, precision, options or BackendOptions())


_EXPORTS = {
    "Encoder": "zsbench.runtime.encoder",
    "EncoderStats": "zsbench.runtime.encoder",
    "LoadedModel": "zsbench.backends.base",
    "ModelRef": "zsbench.models.ref",
}
__all__ = ["BACKENDS", "BackendOptions", "BackendSpec", "check_precision", "checking_backends", "exported_backends",
           "load_backend", *_EXPORTS]
__getattr__ = lazy_attributes(__name__, _EXPORTS)
