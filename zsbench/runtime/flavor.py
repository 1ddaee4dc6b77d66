"""Which TensorRT library runs (or builds) here: standard TensorRT or TensorRT-RTX, by GPU and by what is installed.

The rule (`choose_flavor`, a pure function of the request, the GPU and the installed set):

- TensorRT-RTX targets compute capabilities 7.5, 8.6, 8.9 and 12.x (Turing, Ampere and Ada
  GeForce/RTX cards, Blackwell RTX); on those cards ``auto`` takes standard TensorRT when it is
  installed, else TensorRT-RTX.
- Every other card (A100: 8.0, H100/H200: 9.0, B200: 10.0, ...) needs standard TensorRT.
- Without a GPU only TensorRT-RTX builds (ahead of time); nothing runs.

A missing library is a `BackendUnavailableError` naming the card and the pip command.

polygraphy decides which module its TensorRT backend wraps when `polygraphy.backend.trt` is
first imported (`POLYGRAPHY_USE_TENSORRT_RTX`, read into `polygraphy.config.USE_TENSORRT_RTX`),
so `select_trt_flavor` sets that switch before anything imports the backend. A process keeps
the flavor it chose first: switching later would leave polygraphy bound to the other library.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Literal

from zsbench.errors import BackendUnavailableError, EngineError

if TYPE_CHECKING:
    import torch

FlavorName = Literal["tensorrt", "tensorrt-rtx"]
FlavorRequest = Literal["auto", "tensorrt", "tensorrt-rtx"]
FLAVOR_MODULES: dict[str, str] = {"tensorrt": "tensorrt", "tensorrt-rtx": "tensorrt_rtx"}
INSTALL: dict[str, str] = {
    "tensorrt": "pip install --extra-index-url https://pypi.nvidia.com 'zsbench[trt]'",
    "tensorrt-rtx": "pip install 'zsbench[trt-rtx]'",
}
RTX_CAPABILITIES = ((7, 5), (8, 6), (8, 9))  # plus every 12.x (Blackwell RTX)
_RTX_TARGETS = "compute capability 7.5, 8.6, 8.9 and 12.x"
AHEAD_OF_TIME = "none/ahead-of-time"


@dataclass(frozen=True)
class BuildTarget:
    """A GPU (name, compute capability such as "8.9"), or no GPU: ahead of time."""

    device: str
    compute_capability: str

    @property
    def ahead_of_time(self) -> bool:
        return self.device == AHEAD_OF_TIME

    @property
    def capability(self) -> tuple[int, int] | None:
        """(major, minor), or None ahead of time."""
        if self.ahead_of_time:
            return None
        major, _, minor = self.compute_capability.partition(".")
        return int(major), int(minor or 0)

    def __str__(self) -> str:
        return "no GPU (ahead of time)" if self.ahead_of_time else f"{self.device} ({self.compute_capability})"


AHEAD_OF_TIME_TARGET = BuildTarget(AHEAD_OF_TIME, AHEAD_OF_TIME)


@dataclass(frozen=True)
class TrtFlavor:
    """The TensorRT library in use: ``tensorrt`` or ``tensorrt-rtx``, and its version."""

    name: FlavorName
    version: str

    @property
    def is_rtx(self) -> bool:
        return self.name == "tensorrt-rtx"

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


def rtx_supports(capability: tuple[int, int]) -> bool:
    """Whether TensorRT-RTX runs on a GPU of this compute capability."""
    return capability in RTX_CAPABILITIES or capability[0] == 12


def choose_flavor(requested: str, target: BuildTarget, installed: frozenset[str]) -> FlavorName:
    """The flavor to use for `requested` (auto, tensorrt, tensorrt-rtx) on `target` with the
    libraries `installed` (see the module docstring for the rule).

    Raises:
        EngineError: an unknown request, or a flavor that does not run on this card.
        BackendUnavailableError: the flavor this card needs is not installed.
    """
    if requested not in ("auto", *FLAVOR_MODULES):
        raise EngineError(f"--trt-flavor {requested!r}: expected auto, tensorrt or tensorrt-rtx.")
    capability = target.capability
    if capability is None:  # no GPU: only TensorRT-RTX builds, ahead of time
        if requested == "tensorrt":
            raise BackendUnavailableError(
                "Standard TensorRT builds engines on a GPU, and torch sees none here. Build on the GPU machine, or "
                "use --trt-flavor tensorrt-rtx to build ahead of time on this CPU (for RTX cards only: "
                f"{_RTX_TARGETS})."
            )
        return _installed("tensorrt-rtx", installed, "to build ahead of time without a GPU")
    rtx_ok = rtx_supports(capability)
    if requested == "tensorrt-rtx" and not rtx_ok:
        raise EngineError(
            f"TensorRT-RTX targets {_RTX_TARGETS}; this GPU is {target}. Use standard TensorRT "
            f"(--trt-flavor auto or tensorrt; install: {INSTALL['tensorrt']})."
        )
    if requested != "auto":
        return _installed(requested, installed, f"for {target}")  # type: ignore[arg-type]
    if "tensorrt" in installed or not rtx_ok:
        return _installed("tensorrt", installed, f"for {target}, which TensorRT-RTX does not target ({_RTX_TARGETS})")
    return _installed("tensorrt-rtx", installed, f"for {target}")


def _installed(name: FlavorName, installed: frozenset[str], why: str) -> FlavorName:
    if name not in installed:
        raise BackendUnavailableError(
            f"{name} is needed {why}, and the Python module {FLAVOR_MODULES[name]} is not installed. "
            f"Install it with: {INSTALL[name]}"
        )
    return name


def installed_flavors() -> frozenset[str]:
    """The flavors whose Python module is installed (not yet imported)."""

    def present(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # ValueError: sys.modules[module] is None (import blocked)
            return False

    return frozenset(name for name, module in FLAVOR_MODULES.items() if present(module))


def gpu_target(device: torch.device | None = None) -> BuildTarget:
    """The GPU `device` names (default: the current one), or ahead of time when torch sees no GPU."""
    import torch  # here: choosing options (`--trt_flavor`) must not load it
    if not torch.cuda.is_available():
        return AHEAD_OF_TIME_TARGET
    major, minor = torch.cuda.get_device_capability(device)
    return BuildTarget(torch.cuda.get_device_name(device), f"{major}.{minor}")


_selected: TrtFlavor | None = None


def select_trt_flavor(requested: str, target: BuildTarget) -> TrtFlavor:
    """Chooses the TensorRT library for `target` (`choose_flavor`), imports it, and points polygraphy
    at it before polygraphy's TensorRT backend is imported.

    Raises:
        BackendUnavailableError: the library this card needs cannot be imported.
        EngineError: the request does not suit the card, or this process already chose the other flavor.
    """
    global _selected
    if requested == "auto" and _selected is not None:
        capability = target.capability
        if not _selected.is_rtx or capability is None or rtx_supports(capability):
            return _selected
    name = choose_flavor(requested, target, installed_flavors())
    if _selected is not None:
        if _selected.name != name:
            raise EngineError(
                f"This process already uses {_selected}; polygraphy cannot switch to {name} in the same "
                "process. Run the other flavor in a separate command."
            )
        return _selected
    try:
        module = importlib.import_module(FLAVOR_MODULES[name])
    except (ImportError, OSError) as err:  # OSError: the wheel is there but its shared libraries are not
        raise BackendUnavailableError(
            f"{FLAVOR_MODULES[name]} is installed but cannot be imported ({type(err).__name__}: {err}). "
            f"Reinstall it: {INSTALL[name]}"
        ) from err
    use_rtx = name == "tensorrt-rtx"
    if "polygraphy.backend.trt" in sys.modules and sys.modules["polygraphy.config"].USE_TENSORRT_RTX != use_rtx:
        raise EngineError(
            f"polygraphy's TensorRT backend was imported before zsbench chose {name}, and is bound to the other "
            f"library. Set POLYGRAPHY_USE_TENSORRT_RTX={int(use_rtx)} before starting Python, or import zsbench first."
        )
    os.environ["POLYGRAPHY_USE_TENSORRT_RTX"] = "1" if use_rtx else "0"
    if "polygraphy.config" in sys.modules:
        sys.modules["polygraphy.config"].USE_TENSORRT_RTX = use_rtx
    _selected = TrtFlavor(name, str(module.__version__))
    return _selected


def trt_module(flavor: TrtFlavor) -> ModuleType:
    """The Python module of the selected flavor (`tensorrt` or `tensorrt_rtx`)."""
    if _selected != flavor:
        raise EngineError(f"{flavor} was not selected in this process (selected: {_selected}); call select_trt_flavor first.")
    return importlib.import_module(FLAVOR_MODULES[flavor.name])
