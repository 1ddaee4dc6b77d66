"""The eager PyTorch backend: the family's model in fp32, fp16 or bf16 (`zsbench.runtime.pyt.TorchEncoder`).

bf16 on a CPU runs the fp32 model under bf16 autocast, and only where the CPU multiplies bf16
natively (`zsbench.runtime.cpu_features.native_bf16`: AVX512-BF16, AMX or Arm BF16); elsewhere
torch would emulate bf16, slower than fp32, so it is refused in one line. On a GPU, bf16 loads the
weights in bf16, as fp16 does.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from zsbench.backends import BackendOptions, BackendSpec
from zsbench.precisions import eager_precisions

if TYPE_CHECKING:
    import torch

    from zsbench.backends.base import LoadedModel
    from zsbench.models.ref import ModelRef


def require_cpu_bf16() -> str:
    """The instruction set through which this CPU multiplies bf16 natively.

    Raises:
        UnsupportedPrecisionError: the CPU has none (torch would emulate bf16, slower than fp32).
    """
    from zsbench.errors import UnsupportedPrecisionError
    from zsbench.runtime import cpu_features
    from zsbench.runtime.machine import cpu_model

    native = cpu_features.native_bf16()
    if native is None:
        raise UnsupportedPrecisionError(
            f"--precision bf16 on the CPU needs native bf16 arithmetic (AVX512-BF16 or AMX on x86, BF16 on Arm); "
            f"this CPU ({cpu_model()}) has none, so torch would emulate bf16, slower than fp32. "
            "Use --precision fp32 here, or bf16 on a GPU."
        )
    return native


def load_torch(ref: ModelRef, device: torch.device, precision: str, options: BackendOptions) -> LoadedModel:
    """Loads the checkpoint through its family straight into `precision` on `device` (no artifacts, no gate);
    bf16 on a CPU loads the fp32 weights and runs them under bf16 autocast (module docstring)."""
    import torch

    from zsbench.backends.base import LoadedModel
    from zsbench.models.families import get_family
    from zsbench.runtime.pyt import TorchEncoder

    del options
    family = get_family(ref.model_type)
    if device.type == "cpu" and precision == "bf16":
        native = require_cpu_bf16()
        loaded = ref.load(device, "fp32")
        encoder = TorchEncoder(loaded.model, device, precision, autocast=torch.bfloat16, autocast_via=native)
    else:
        loaded = ref.load(device, precision)
        encoder = TorchEncoder(loaded.model, device, precision)
    return LoadedModel(encoder, loaded.tokenizer, partial(family.transform, loaded.preprocess))


BACKEND = BackendSpec(name="torch", runtime="torch", precisions=eager_precisions, available=lambda device: None, load=load_torch)
