"""A toy backend: the README's "Adding a backend" recipe, as one file. It runs the family's PyTorch model in
float64 (a runtime of its own, as onnxruntime or tensorrt are), so its metrics are PyTorch's, up to rounding."""

from __future__ import annotations

import torch

from zsbench.backends import BackendOptions, BackendSpec
from zsbench.backends.base import LoadedModel
from zsbench.models.families import get_family
from zsbench.models.ref import ModelRef
from zsbench.runtime.encoder import Encoder


class Float64Encoder(Encoder):
    """`encode_image` / `encode_text` of a float64 copy of the model."""

    name = "toy64"

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        super().__init__(device, "fp32")
        self.model = model.to(torch.float64)

    @torch.inference_mode()
    def _encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels.to(self.device, torch.float64))

    @torch.inference_mode()
    def _encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(input_ids.to(self.device))


def load_toy64(ref: ModelRef, device: torch.device, precision: str, options: BackendOptions) -> LoadedModel:
    """The family's fp32 model, copied to float64."""
    del options
    loaded = ref.load(device, precision)
    family = get_family(ref.model_type)
    return LoadedModel(Float64Encoder(loaded.model, device), loaded.tokenizer, lambda task: family.transform(loaded.preprocess, task))


BACKEND = BackendSpec(name="toy64", runtime="torch (float64)", precisions=lambda: ("fp32",),
                      available=lambda device: None, load=load_toy64)
