"""The eager PyTorch backend: `load_clip`'s model in fp32, fp16 or bf16.

bf16 on a CPU runs the fp32 model under `torch.autocast(dtype=bfloat16)`: matrix multiplies
and attention in bf16 where the CPU does bf16 natively (`zsbench.runtime.cpu_features`),
norms, softmax statistics and the residual stream in fp32, as autocast's CPU op lists decide.
A CPU without native bf16 is refused: torch would emulate it, slower than fp32. On a GPU,
bf16 loads the weights in bf16, as fp16 does.
"""

from __future__ import annotations

import torch
from torch import nn

from zsbench.backends.artifacts import BackendOptions
from zsbench.backends.base import LoadedModel
from zsbench.errors import UnsupportedPrecisionError
from zsbench.models import DTYPES
from zsbench.models.ref import ModelRef
from zsbench.runtime import cpu_features
from zsbench.runtime.encoder import Encoder


class TorchEncoder(Encoder):
    """Runs `model.encode_image` / `model.encode_text` under `torch.inference_mode` (and `autocast`, when given)."""

    name = "torch"

    def __init__(self, model: nn.Module, device: torch.device, precision: str, autocast: torch.dtype | None = None) -> None:
        super().__init__(device, precision)
        self.model = model
        self.autocast = autocast
        # Under autocast the weights stay fp32 and so do the pixels that enter the model.
        self.dtype = torch.float32 if autocast is not None else DTYPES[precision]

    @torch.inference_mode()
    def _encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            return self.model.encode_image(pixels.to(self.device, dtype=self.dtype, non_blocking=True))

    @torch.inference_mode()
    def _encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            return self.model.encode_text(input_ids.to(self.device, non_blocking=True))

    def describe(self) -> dict[str, object]:
        described = {**super().describe(), "torch": torch.__version__}
        if self.autocast is not None:
            described["autocast"] = f"{str(self.autocast).removeprefix('torch.')} ({cpu_features.native_bf16()})"
        return described


def require_cpu_bf16() -> str:
    """The CPU's native bf16 instruction set.

    Raises:
        UnsupportedPrecisionError: the CPU has none (torch would emulate bf16, slower than fp32).
    """
    native = cpu_features.native_bf16()
    if native is None:
        raise UnsupportedPrecisionError(
            f"--precision bf16 on the CPU needs native bf16 arithmetic (AVX512-BF16 or AMX on x86, BF16 on Arm); "
            f"this CPU ({cpu_features.cpu_name()}) has none, so torch would emulate bf16, slower than fp32. "
            "Use --precision fp32 here, or bf16 on a GPU."
        )
    return native


def load_torch(ref: ModelRef, device: torch.device, precision: str, options: BackendOptions) -> LoadedModel:
    """Loads the checkpoint with `load_clip` straight into `precision` on `device` (no artifacts, no gate);
    bf16 on a CPU loads fp32 weights and runs them under bf16 autocast (module docstring)."""
    del options
    if device.type == "cpu" and precision == "bf16":
        require_cpu_bf16()
        model, transform, tokenizer = ref.load(device, "fp32")
        return LoadedModel(TorchEncoder(model, device, precision, autocast=torch.bfloat16), transform, tokenizer)
    model, transform, tokenizer = ref.load(device, precision)
    return LoadedModel(TorchEncoder(model, device, precision), transform, tokenizer)
