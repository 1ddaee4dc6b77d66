"""The one place that chooses standard TensorRT or TensorRT-RTX for this process.

polygraphy decides which module its TensorRT backend wraps when `polygraphy.backend.trt` is
first imported (`lazy_import_trt` reads `POLYGRAPHY_USE_TENSORRT_RTX`, via
`polygraphy.config.USE_TENSORRT_RTX`). So `select_trt_flavor` sets that switch and only then
imports the backend; every other zsbench module gets TensorRT through `trt_modules()`.
A process keeps the flavor it chose first: switching later would leave polygraphy bound to
the other library, so it is refused.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

from zsbench.errors import BackendUnavailableError, EngineError

FlavorRequest = Literal["auto", "tensorrt", "tensorrt-rtx"]
FLAVOR_MODULES = {"tensorrt": "tensorrt", "tensorrt-rtx": "tensorrt_rtx"}
_INSTALL = {
    "tensorrt": "pip install --extra-index-url https://pypi.nvidia.com 'zsbench[trt]'",
    "tensorrt-rtx": "pip install 'zsbench[trt-rtx]'",
}


@dataclass(frozen=True)
class TrtFlavor:
    """The TensorRT library in use: ``tensorrt`` or ``tensorrt-rtx``, and its version."""

    name: Literal["tensorrt", "tensorrt-rtx"]
    version: str

    @property
    def is_rtx(self) -> bool:
        return self.name == "tensorrt-rtx"

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


_selected: TrtFlavor | None = None


def _try_import(name: str) -> tuple[ModuleType | None, str]:
    try:
        return importlib.import_module(FLAVOR_MODULES[name]), ""
    except (ImportError, OSError) as err:  # OSError: the wheel is there but its shared libraries are not
        return None, f"{type(err).__name__}: {err}"


def select_trt_flavor(requested: FlavorRequest = "auto") -> TrtFlavor:
    """Chooses the TensorRT library (``auto``: tensorrt if importable, else tensorrt_rtx) and
    points polygraphy at it before its TensorRT backend is imported.

    Raises:
        BackendUnavailableError: the requested library (or, for ``auto``, neither) can be imported.
        EngineError: this process already chose the other flavor.
    """
    global _selected
    if requested not in ("auto", *FLAVOR_MODULES):
        raise EngineError(f"--trt-flavor {requested!r}: expected auto, tensorrt or tensorrt-rtx.")
    if _selected is not None:
        if requested not in ("auto", _selected.name):
            raise EngineError(
                f"This process already uses {_selected}; polygraphy cannot switch to {requested} in the same "
                "process. Run the other flavor in a separate command."
            )
        return _selected
    candidates = ["tensorrt", "tensorrt-rtx"] if requested == "auto" else [requested]
    problems = []
    for name in candidates:
        module, problem = _try_import(name)
        if module is None:
            problems.append(f"{FLAVOR_MODULES[name]} ({problem}; install: {_INSTALL[name]})")
            continue
        use_rtx = name == "tensorrt-rtx"
        if "polygraphy.backend.trt" in sys.modules and sys.modules["polygraphy.config"].USE_TENSORRT_RTX != use_rtx:
            raise EngineError(
                f"polygraphy's TensorRT backend was imported before zsbench chose {name}, and is bound to the other "
                "library. Set POLYGRAPHY_USE_TENSORRT_RTX="
                f"{int(use_rtx)} before starting Python, or import zsbench.export first."
            )
        os.environ["POLYGRAPHY_USE_TENSORRT_RTX"] = "1" if use_rtx else "0"
        if "polygraphy.config" in sys.modules:
            sys.modules["polygraphy.config"].USE_TENSORRT_RTX = use_rtx
        _selected = TrtFlavor(name, str(module.__version__))  # type: ignore[arg-type]
        return _selected
    raise BackendUnavailableError(f"No usable TensorRT library: expected one of {'; '.join(problems)}.")


def trt_modules(flavor: TrtFlavor) -> tuple[ModuleType, ModuleType]:
    """`(tensorrt module, polygraphy.backend.trt)` for the selected flavor."""
    if _selected != flavor:
        raise EngineError(f"{flavor} was not selected in this process (selected: {_selected}); call select_trt_flavor first.")
    try:
        polygraphy_trt = importlib.import_module("polygraphy.backend.trt")
    except ImportError as err:
        raise BackendUnavailableError(f"polygraphy is not installed; it drives the engine build. Install: {_INSTALL[flavor.name]}") from err
    return importlib.import_module(FLAVOR_MODULES[flavor.name]), polygraphy_trt
