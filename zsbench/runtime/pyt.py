"""The eager PyTorch model as an `Encoder` (what `--backend torch` runs, and the reference parity compares with)."""

from __future__ import annotations

import torch
from torch import nn

from zsbench.precisions import PRECISIONS
from zsbench.runtime.encoder import Encoder


class TorchEncoder(Encoder):
    """Runs `model.encode_image` / `model.encode_text` under `torch.inference_mode`."""

    name = "torch"

    def __init__(self, model: nn.Module, device: torch.device, precision: str) -> None:
        super().__init__(device, precision)
        self.model = model
        self.dtype = PRECISIONS.get(precision).dtype()

    @torch.inference_mode()
    def _encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels.to(self.device, dtype=self.dtype, non_blocking=True))

    @torch.inference_mode()
    def _encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(input_ids.to(self.device, non_blocking=True))

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "torch": torch.__version__}
