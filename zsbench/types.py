"""The closed sets the command line and the library share, defined once, and the one resolver of each default.

Importing this module is cheap (no torch): the CLI builds its choices from these names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

from zsbench.errors import BackendUnavailableError, UnknownNameError, UnsupportedPrecisionError, ZsbenchError
from zsbench.precisions import PRECISIONS, eager_precisions, export_precisions

if TYPE_CHECKING:
    import torch

# A name registered in `zsbench.backends.BACKENDS` (checked when the command line is parsed): a registry,
# not a Literal, so that adding a backend is one module and one registration.
Backend = str
# A name registered in `zsbench.precisions.PRECISIONS` (a registry, for the same reason).
Precision = str
Task = Literal["zeroshot_classification", "zeroshot_retrieval"]
# A name registered in `zsbench.models.families.MODEL_FAMILIES` (a registry, for the same reason as `Backend`).
ModelType = str
# A device as the user writes it: "auto" (the GPU when torch sees one), "cpu", "cuda" or "cuda:N".
Device = str

TASKS: tuple[Task, ...] = get_args(Task)
DEVICE_TYPES = ("cpu", "cuda")


def resolve_device(device: Device | None, *, require_present: bool = True) -> torch.device:
    """`device` as a torch device: ``auto``/None -> the GPU when torch sees one, else the CPU.

    Raises:
        BackendUnavailableError: not cpu/cuda[:N], or (with `require_present`) cuda on a machine without one.
    """
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise BackendUnavailableError(f"--device {device} is not a device: expected auto, cpu, cuda or cuda:N.") from err
    if parsed.type not in DEVICE_TYPES:
        raise BackendUnavailableError(f"--device {device}: zsbench runs on auto, cpu or cuda (cuda:N), not {parsed.type}.")
    if require_present and parsed.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(
            f"--device {device} was requested but torch sees no CUDA GPU. Use --device cpu, or install a CUDA build of torch."
        )
    return parsed


def resolve_precision(precision: str | None, device: torch.device, *, no_amp: bool = False) -> Precision:
    """`precision`, or the default every command shares: fp16 on a GPU (as the seed runs), fp32 on a CPU.

    `export` and `eval` resolve alike, so `zsbench export` then `zsbench eval` finds the same export.
    `no_amp` is CLIP_benchmark's flag forcing fp32.
    """
    if precision is not None and precision not in PRECISIONS:
        raise UnknownNameError("precision", precision, PRECISIONS.names())
    if no_amp and precision not in (None, "fp32"):
        raise ZsbenchError(f"--no_amp forces fp32 but --precision {precision} was also given; pass only one.")
    if no_amp:
        return "fp32"
    if precision is not None:
        return precision
    return "fp16" if device.type == "cuda" else "fp32"


def export_precision(precision: str) -> Precision:
    """`precision` if exported graphs come in it (`PrecisionSpec.graphs`: fp32, fp16, int8, fp8); bf16 runs on the
    torch backend only.

    Raises:
        UnsupportedPrecisionError: any other precision, from `zsbench export` and the onnx/trt backends alike.
    """
    allowed = export_precisions()
    if precision in allowed:
        return precision
    raise UnsupportedPrecisionError(
        f"--precision {precision}: exported graphs and engines are {', '.join(allowed)}; {precision} runs on "
        f"--backend torch, which runs {', '.join(eager_precisions())}. Pass --precision {' or '.join(allowed)}, or use the torch backend."
    )
