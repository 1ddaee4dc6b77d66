"""The eager PyTorch backend: `load_clip`'s model in fp32, fp16 or bf16."""

from __future__ import annotations

import torch
from torch import nn

from zsbench.backends.artifacts import BackendOptions
from zsbench.backends.base import LoadedModel
from zsbench.runtime.encoder import Encoder
from zsbench.models import DTYPES
from zsbench.models.ref import ModelRef


class TorchEncoder(Encoder):
    """Runs `model.encode_image` / `model.encode_text` under `torch.inference_mode`."""

    name = "torch"

    def __init__(self, model: nn.Module, device: torch.device, precision: str) -> None:
        super().__init__(device, precision)
        self.model = model
        self.dtype = DTYPES[precision]

    @torch.inference_mode()
    def _encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels.to(self.device, dtype=self.dtype, non_blocking=True))

    @torch.inference_mode()
    def _encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(input_ids.to(self.device, non_blocking=True))

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "torch": torch.__version__}


def load_torch(ref: ModelRef, device: torch.device, precision: str, options: BackendOptions) -> LoadedModel:
    """Loads the checkpoint with `load_clip` straight into `precision` on `device` (no artifacts, no gate)."""
    del options
    model, transform, tokenizer = ref.load(device, precision)
    return LoadedModel(TorchEncoder(model, device, precision), transform, tokenizer)
