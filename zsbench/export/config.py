"""What `zsbench export` and `zsbench engine build` are asked: their config dataclasses (the command-line
layer declares their options: `zsbench.cli_args`).

Kept apart from the modules that act on them, and free of torch, onnx and TensorRT, so that building
the commands' options (`--help`, shell completion, a missing option) stays fast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsbench.errors import EngineError
from zsbench.models.ref import ModelRef
from zsbench.runtime.flavor import FlavorRequest
from zsbench.types import Device, Precision

if TYPE_CHECKING:
    import torch

    from zsbench.export.parity import ParityThresholds
    from zsbench.runtime.engine_manifest import EngineManifest


@dataclass(frozen=True)
class ProbeConfig:
    """How many probes, in which batches. For a text graph of any length, every `pad_every`-th text
    batch is padded to the tokenizer's full context length, the others to their longest text.

    200 images make the 0.995 top-1 agreement threshold meaningful (one flip allowed)."""

    num_images: int = 200
    num_classes: int = 50
    num_templates: int = 8
    image_batch_sizes: tuple[int, ...] = (1, 2, 5, 8, 16, 32)
    text_batch_sizes: tuple[int, ...] = (1, 3, 16, 64)
    pad_every: int = 4
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeConfig:
        values = dict(data)
        for key in ("image_batch_sizes", "text_batch_sizes"):
            values[key] = tuple(values[key])
        return cls(**values)


@dataclass(frozen=True)
class CalibrationConfig:
    """What quantized graphs (int8, fp8) are calibrated on (`zsbench.export.quantize.calibration`).

    `dataset` and `root`: a dataset zsbench reads (its images; its class names x templates, or its captions);
    None: synthetic images of the parity probes' kinds and ImageNet prompts. `num_samples` images and as many
    prompts, none of them a parity probe, in batches of `batch_size`; with a text graph of any length every
    `pad_every`-th text batch is padded to the full context, as the parity probes are.
    """

    dataset: str | None = None
    root: Path | None = None
    split: str = "test"
    num_samples: int = 512
    seed: int = 0
    batch_size: int = 16
    pad_every: int = 4


@dataclass(frozen=True)
class ExportConfig:
    """What `zsbench export` was asked: the model, where to write, precision, opset, parity probes; for quantized
    precisions the calibration set and the user's `--keep_fp32` patterns; `for_engines`: the graphs engines are
    built from (`PrecisionSpec.target`)."""

    model: ModelRef
    out: Path | None = None
    precision: Precision | None = None
    opset: int | None = None
    force: bool = False
    device: Device = "auto"
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    thresholds: ParityThresholds | None = None
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    keep_fp32: tuple[str, ...] = ()
    for_engines: bool = False

    def output_folder(self, precision: Precision, target: str = "") -> Path:
        """`out`, or the default folder of this model in `precision` (the resolved one) for `target`."""
        from zsbench.export.store import default_export_dir

        return self.out if self.out is not None else default_export_dir(self.model, precision, target)

    def check_calibration(self, quantized: bool) -> None:
        """Refuses calibration options for a precision that is not quantized, and half a dataset source.

        Raises:
            ExportError: naming the option and the fix.
        """
        from zsbench.errors import ExportError

        given = [name for name, value in (("--calibration_dataset", self.calibration.dataset),
                                           ("--calibration_root", self.calibration.root),
                                           ("--keep_fp32", self.keep_fp32)) if value]
        if not quantized and given:
            raise ExportError(f"{', '.join(given)} apply to quantized graphs (int8, fp8), not to --precision {self.precision}: "
                              "drop them, or pass --precision int8.")
        if (self.calibration.dataset is None) != (self.calibration.root is None):
            raise ExportError("--calibration_dataset NAME and --calibration_root DIR go together (the dataset and the folder "
                              "holding it, as `zsbench eval --dataset/--dataset_root`); pass both, or neither for synthetic images.")
        if self.calibration.dataset is not None:  # a misspelt name fails before the model is loaded
            from zsbench.data import dataset_entry
            from zsbench.errors import UnknownNameError

            try:
                dataset_entry(self.calibration.dataset)
            except UnknownNameError as err:
                raise ExportError(f"--calibration_dataset: {err}") from err
            assert self.calibration.root is not None
            if not Path(self.calibration.root).is_dir():  # before the model is loaded and traced
                raise ExportError(f"--calibration_root {self.calibration.root} is not a folder: pass the folder holding "
                                  f"{self.calibration.dataset} (as `zsbench eval --dataset_root`), e.g. one made by "
                                  f"`zsbench datasets download {self.calibration.dataset} --root DIR`.")


def parse_profile(text: str) -> tuple[int, int, int]:
    """'MIN:OPT:MAX' -> (min, opt, max).

    Raises:
        ValueError: not three non-negative integers separated by colons.
    """
    parts = text.split(":")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise ValueError(f"expected MIN:OPT:MAX such as 1:16:64, found {text!r}")
    low, opt, high = (int(part) for part in parts)
    return low, opt, high


def format_profile(profile: tuple[int, int, int]) -> str:
    """(min, opt, max) -> 'MIN:OPT:MAX'."""
    return ":".join(map(str, profile))


@dataclass(frozen=True)
class EngineConfig:
    """What `zsbench engine build` was asked.

    `batch_profiles`: (min, opt, max) batch sizes, one optimization profile each (the runner
    picks the profile that fits a batch, and splits batches beyond the largest). Text
    profiles span `text_length` (min, opt, max), capped at the tokenizer's context length.
    """

    artifact: Path
    out: Path | None = None
    flavor: FlavorRequest = "auto"
    batch_profiles: tuple[tuple[int, int, int], ...] = ((1, 16, 64),)
    text_length: tuple[int, int, int] = (1, 32, 80)
    workspace_gib: float = 4.0
    timing_cache: Path | None = None
    compute_capabilities: tuple[str, ...] = ()
    force: bool = False
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    device: torch.device | None = None  # the GPU to build for and check on (None: the current one)

    @classmethod
    def as_built(cls, artifact: Path, out: Path, built: EngineManifest, device: torch.device | None = None) -> EngineConfig:
        """The config `built` records (profiles, text length, workspace, flavor), so that engines a user
        built with their own settings are reused, and rebuilt with those settings when stale. The
        recorded flavor is kept when it is installed and runs on this GPU, else ``auto`` chooses."""
        from zsbench.runtime.flavor import format_capability, gpu_target, installed_flavors, installed_rtx_capabilities, rtx_supports

        vision, text = built.profiles["vision"], built.profiles["text"][0]
        capability = gpu_target(device).capability
        installed = installed_flavors()
        suits = capability is None or built.flavor == "tensorrt" or rtx_supports(capability, installed_rtx_capabilities(installed))
        flavor = built.flavor if suits and built.flavor in installed else "auto"
        # Targets a user chose are kept, unless this GPU is not among them (then the build targets this GPU).
        targets = built.compute_capabilities or ()
        if capability is not None and format_capability(capability) not in targets:
            targets = ()
        return cls(
            artifact=artifact,
            out=out,
            flavor=flavor,  # type: ignore[arg-type]
            batch_profiles=tuple((p.min[0], p.opt[0], p.max[0]) for p in vision),
            text_length=(text.min[1], text.opt[1], text.max[1]),
            workspace_gib=built.workspace_bytes / 2**30,
            timing_cache=Path(built.timing_cache) if built.timing_cache else None,
            compute_capabilities=targets,
            device=device,
        )

    def validate(self) -> None:
        for lo, opt, hi in (*self.batch_profiles, self.text_length):
            if not 1 <= lo <= opt <= hi:
                raise EngineError(f"Profile ({lo}, {opt}, {hi}): expected 1 <= min <= opt <= max.")
        from zsbench.runtime.flavor import parse_capability

        for text in self.compute_capabilities:
            try:
                parse_capability(text)
            except ValueError as err:
                raise EngineError(f"--compute_capabilities: {err}.") from err
