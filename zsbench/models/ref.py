"""`ModelRef`: everything that names a model and its checkpoint, whatever backend runs or exports it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelRef:
    """A model as the command line names it (`--model_type --model --pretrained --tokenizer --model_config`)."""

    model_type: str
    model: str
    pretrained: str
    tokenizer: str | None = None
    model_config: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def load(self, device: str | torch.device, precision: str) -> tuple[nn.Module, Callable, Callable]:
        """`load_clip` of this model: `(model, transform, tokenizer)` on `device` in `precision`."""
        from zsbench.models.factory import load_clip

        return load_clip(self.model_type, self.model, self.pretrained, device, precision,  # type: ignore[arg-type]
                         self.tokenizer, self.model_config)
