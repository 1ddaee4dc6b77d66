"""Which TensorRT library runs (or builds) here: standard TensorRT or TensorRT-RTX, by GPU and by what is installed.

The rule (`choose_flavor`, a pure function of the request, the GPU, the installed set and the
compute capabilities TensorRT-RTX can target):

- TensorRT-RTX targets the compute capabilities its `ComputeCapability` enum lists (1.7: 7.5,
  8.0, 8.6, 8.9, 12.0, 12.1); on those cards ``auto`` takes standard TensorRT when it is
  installed, else TensorRT-RTX.
- Every other card (H100/H200: 9.0, B200: 10.0, ...) needs standard TensorRT.
- Without a GPU only TensorRT-RTX builds (ahead of time); nothing runs.

Ahead-of-time TensorRT-RTX builds name their targets explicitly (`default_rtx_targets`): every
capability the installed TensorRT-RTX lists but 7.5, which it builds for only when asked (Turing
in a portable engine slows the other cards down), so `--compute_capabilities 7.5,...` adds it.

A missing library is a `BackendUnavailableError` naming the card and the pip command
(`install_command`: standard TensorRT from NVIDIA's index, for torch's CUDA major version).

polygraphy decides which module its TensorRT backend wraps when `polygraphy.backend.trt` is
first imported (`POLYGRAPHY_USE_TENSORRT_RTX`, read into `polygraphy.config.USE_TENSORRT_RTX`),
so `select_trt_flavor` sets that switch before anything imports the backend. A process keeps
the flavor it chose first: switching later would leave polygraphy bound to the other library.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Literal

from zsbench.errors import BackendUnavailableError, EngineError

if TYPE_CHECKING:
    import torch

FlavorName = Literal["tensorrt", "tensorrt-rtx"]
FlavorRequest = Literal["auto", "tensorrt", "tensorrt-rtx"]
FLAVOR_MODULES: dict[str, str] = {"tensorrt": "tensorrt", "tensorrt-rtx": "tensorrt_rtx"}
NVIDIA_INDEX = "https://pypi.nvidia.com"  # standard TensorRT's wheels download from here, not from PyPI
Capability = tuple[int, int]
# TensorRT-RTX 1.7's `ComputeCapability` list: what advice assumes where no TensorRT-RTX is installed to ask.
KNOWN_RTX_CAPABILITIES: tuple[Capability, ...] = ((7, 5), (8, 0), (8, 6), (8, 9), (12, 0), (12, 1))
# Targets TensorRT-RTX builds for only when asked (its documentation: Turing in a portable engine costs the others speed).
OPT_IN_RTX_CAPABILITIES: tuple[Capability, ...] = ((7, 5),)
AHEAD_OF_TIME = "none/ahead-of-time"


def parse_capability(text: str) -> Capability:
    """'8.6' -> (8, 6).

    Raises:
        ValueError: not MAJOR.MINOR.
    """
    major, dot, minor = text.strip().partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        raise ValueError(f"expected a compute capability MAJOR.MINOR such as 8.6, found {text!r}")
    return int(major), int(minor)


def format_capability(capability: Capability) -> str:
    """(8, 6) -> "8.6"."""
    return f"{capability[0]}.{capability[1]}"


def format_capabilities(capabilities: Iterable[Capability]) -> str:
    """'7.5, 8.6 and 12.0' (for messages)."""
    names = [format_capability(c) for c in capabilities]
    if len(names) < 2:
        return names[0] if names else "none"
    return f"{', '.join(names[:-1])} and {names[-1]}"


def capabilities_from_enum(names: Iterable[str]) -> tuple[Capability, ...]:
    """The compute capabilities of TensorRT-RTX's `ComputeCapability` member names (SM75 -> (7, 5),
    SM120 -> (12, 0); NONE and CURRENT are not targets), sorted."""
    found = []
    for name in names:
        match = re.fullmatch(r"SM(\d+)(\d)", name)
        if match:
            found.append((int(match.group(1)), int(match.group(2))))
    return tuple(sorted(found))


def rtx_capabilities(module: ModuleType) -> tuple[Capability, ...]:
    """The compute capabilities an imported TensorRT-RTX module can build for (its `ComputeCapability` enum)."""
    return capabilities_from_enum(getattr(module.ComputeCapability, "__members__", {}))


def default_rtx_targets(supported: Iterable[Capability]) -> tuple[Capability, ...]:
    """The targets of an ahead-of-time TensorRT-RTX build when none are asked for: all it supports but the opt-in ones."""
    return tuple(c for c in supported if c not in OPT_IN_RTX_CAPABILITIES)


def install_command(name: FlavorName, cuda_major: int | None = None) -> str:
    """The pip command that installs `name` for CUDA `cuda_major` (torch's; None: the newest tested)."""
    if name == "tensorrt-rtx":
        return "pip install 'zsbench[trt-rtx-cu12]'" if cuda_major == 12 else "pip install 'zsbench[trt-rtx]'"
    extra = {12: "trt-cu12", 13: "trt-cu13"}.get(cuda_major or 0, "trt")
    return f"pip install --extra-index-url {NVIDIA_INDEX} 'zsbench[{extra}]'"


# The oldest polygraphy each flavor builds engines with (pyproject.toml's extras require the same):
# 0.50.3 creates TensorRT-RTX >= 1.5 networks (which dropped the EXPLICIT_BATCH flag) and has
# CreateConfigRTX with compute-capability targets (PyPI's first CreateConfigRTX is 0.49.26);
# 0.53.4 is the first that knows TensorRT 11 (flags removed with weak typing).
POLYGRAPHY_MINIMUM: dict[str, str] = {"tensorrt": "0.53.4", "tensorrt-rtx": "0.50.3"}
# The standard TensorRT major versions the runner's contract tests model (tests/runtime/standin_trt.py);
# pyproject.toml's extras stop before the next one.
TESTED_TRT_MAJORS = (10, 11)


def version_tuple(text: str) -> tuple[int, ...]:
    """'0.53.6' -> (0, 53, 6); a non-numeric part ends it ('10.13.3.9.post1' -> (10, 13, 3, 9))."""
    numbers = []
    for part in text.split("."):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers)


def polygraphy_problem(flavor: FlavorName, version: str | None) -> tuple[str, str] | None:
    """(why, the pip command that fixes it) when polygraphy `version` (None: not installed) cannot build
    `flavor` engines; None when it can."""
    needed = POLYGRAPHY_MINIMUM[flavor]
    fix = f"pip install --upgrade 'polygraphy>={needed}'"
    if version is None:
        return f"polygraphy is not installed; it drives the {flavor} engine build", fix
    if version_tuple(version) < version_tuple(needed):
        what = "TensorRT-RTX's compute-capability targets and networks" if flavor == "tensorrt-rtx" else "TensorRT 11"
        return f"polygraphy {version} is too old to build {flavor} engines (zsbench needs >= {needed}, for {what})", fix
    return None


def torch_cuda_major() -> int | None:
    """The CUDA major version torch was built with (None: a CPU-only torch)."""
    import torch

    return int(torch.version.cuda.split(".")[0]) if torch.version.cuda else None


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


def rtx_supports(capability: Capability, rtx_targets: Iterable[Capability] = KNOWN_RTX_CAPABILITIES) -> bool:
    """Whether TensorRT-RTX runs on a GPU of this compute capability (`rtx_targets`: what the installed
    TensorRT-RTX lists, `installed_rtx_capabilities`)."""
    return capability in tuple(rtx_targets)


def needed_flavor(requested: str, target: BuildTarget, installed: frozenset[str],
                  rtx_targets: tuple[Capability, ...] = KNOWN_RTX_CAPABILITIES, cuda_major: int | None = None) -> tuple[FlavorName, str]:
    """The flavor the rule picks for `requested` (auto, tensorrt, tensorrt-rtx) on `target`, given the
    libraries `installed` and TensorRT-RTX's `rtx_targets` (see the module docstring), whether or not it
    is installed, and for whom it is needed (the words a missing library's error uses).

    Raises:
        EngineError: an unknown request, or a flavor that does not run on this card.
        BackendUnavailableError: standard TensorRT asked for without a GPU.
    """
    if requested not in ("auto", *FLAVOR_MODULES):
        raise EngineError(f"--trt-flavor {requested!r}: expected auto, tensorrt or tensorrt-rtx.")
    targets = f"compute capability {format_capabilities(rtx_targets)}"
    capability = target.capability
    if capability is None:  # no GPU: only TensorRT-RTX builds, ahead of time
        if requested == "tensorrt":
            raise BackendUnavailableError(
                "Standard TensorRT builds engines on a GPU, and torch sees none here. Build on the GPU machine, or "
                f"use --trt-flavor tensorrt-rtx to build ahead of time on this CPU (for the cards TensorRT-RTX targets: {targets})."
            )
        return "tensorrt-rtx", "to build ahead of time without a GPU"
    rtx_ok = rtx_supports(capability, rtx_targets)
    if requested == "tensorrt-rtx" and not rtx_ok:
        raise EngineError(
            f"TensorRT-RTX targets {targets}; this GPU is {target}. Use standard TensorRT "
            f"(--trt-flavor auto or tensorrt; install: {install_command('tensorrt', cuda_major)})."
        )
    if requested != "auto":
        return requested, f"for {target}"  # type: ignore[return-value]
    if "tensorrt" in installed or not rtx_ok:
        return "tensorrt", f"for {target}" + ("" if rtx_ok else f", which TensorRT-RTX does not target ({targets})")
    return "tensorrt-rtx", f"for {target}"


def choose_flavor(requested: str, target: BuildTarget, installed: frozenset[str],
                  rtx_targets: tuple[Capability, ...] = KNOWN_RTX_CAPABILITIES, cuda_major: int | None = None) -> FlavorName:
    """`needed_flavor`, which must be installed; `cuda_major` (torch's) picks the pip command a missing
    library's error names.

    Raises:
        EngineError: an unknown request, or a flavor that does not run on this card.
        BackendUnavailableError: the flavor this card needs is not installed.
    """
    name, why = needed_flavor(requested, target, installed, rtx_targets, cuda_major)
    return _installed(name, installed, why, cuda_major)


def _installed(name: FlavorName, installed: frozenset[str], why: str, cuda_major: int | None) -> FlavorName:
    if name not in installed:
        raise BackendUnavailableError(
            f"{name} is needed {why}, and the Python module {FLAVOR_MODULES[name]} is not installed. "
            f"Install it with: {install_command(name, cuda_major)}"
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


def installed_rtx_capabilities(installed: frozenset[str]) -> tuple[Capability, ...]:
    """What the installed TensorRT-RTX can target, read from its `ComputeCapability` enum when the list
    decides the flavor (TensorRT-RTX installed, standard TensorRT not: then the process would use it
    anyway); otherwise, or when it cannot be imported, TensorRT-RTX 1.7's list."""
    if installed != frozenset({"tensorrt-rtx"}):
        return KNOWN_RTX_CAPABILITIES
    try:
        return rtx_capabilities(importlib.import_module(FLAVOR_MODULES["tensorrt-rtx"])) or KNOWN_RTX_CAPABILITIES
    except (ImportError, OSError):  # select_trt_flavor reports a broken install when it imports it for real
        return KNOWN_RTX_CAPABILITIES


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
    installed = installed_flavors()
    rtx_targets = installed_rtx_capabilities(installed)
    if requested == "auto" and _selected is not None:
        capability = target.capability
        if not _selected.is_rtx or capability is None or rtx_supports(capability, rtx_targets):
            return _selected
    name = choose_flavor(requested, target, installed, rtx_targets, torch_cuda_major())
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
            f"Reinstall it: {install_command(name, torch_cuda_major())}"
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
