"""The eager PyTorch model as an `Encoder` (what `--backend torch` runs, and the reference parity compares with).

bf16 on a CPU runs the fp32 model under `torch.autocast(dtype=bfloat16)` (`autocast`): matrix
multiplies and attention in bf16, norms, softmax statistics and the residual stream in fp32, as
autocast's CPU op lists decide. Everywhere else the weights are loaded in the precision's dtype.
"""

from __future__ import annotations

import torch
from torch import nn

from zsbench.precisions import PRECISIONS
from zsbench.runtime.encoder import Encoder


class TorchEncoder(Encoder):
    """Runs `model.encode_image` / `model.encode_text` under `torch.inference_mode` (and `torch.autocast` in
    `autocast`'s dtype, when given: the model's weights then stay fp32, and so do the pixels fed to it)."""

    name = "torch"

    def __init__(self, model: nn.Module, device: torch.device, precision: str, autocast: torch.dtype | None = None,
                 autocast_via: str | None = None) -> None:
        super().__init__(device, precision)
        self.model = model
        self.autocast = autocast
        self.autocast_via = autocast_via  # what runs the autocast dtype natively (e.g. "AVX512-BF16"), for `describe`
        self.dtype = torch.float32 if autocast is not None else PRECISIONS.get(precision).dtype()

    @torch.inference_mode()
    def _encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            return self.model.encode_image(pixels.to(self.device, dtype=self.dtype, non_blocking=True))

    @torch.inference_mode()
    def _encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            return self.model.encode_text(input_ids.to(self.device, non_blocking=True))

    def describe(self) -> dict[str, object]:
        described: dict[str, object] = {**super().describe(), "torch": torch.__version__}
        if self.autocast is not None:
            via = f" ({self.autocast_via})" if self.autocast_via else ""
            described["autocast"] = f"{str(self.autocast).removeprefix('torch.')}{via}"
        return described
