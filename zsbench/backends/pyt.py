"""The eager PyTorch backend: the family's model in fp32, fp16 or bf16 (`zsbench.runtime.pyt.TorchEncoder`)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from zsbench.backends import BackendOptions, BackendSpec
from zsbench.precisions import precision_names

if TYPE_CHECKING:
    import torch

    from zsbench.backends.base import LoadedModel
    from zsbench.models.ref import ModelRef


def load_torch(ref: ModelRef, device: torch.device, precision: str, options: BackendOptions) -> LoadedModel:
    """Loads the checkpoint through its family straight into `precision` on `device` (no artifacts, no gate)."""
    from zsbench.backends.base import LoadedModel
    from zsbench.models.families import get_family
    from zsbench.runtime.pyt import TorchEncoder

    del options
    loaded = ref.load(device, precision)
    family = get_family(ref.model_type)
    return LoadedModel(TorchEncoder(loaded.model, device, precision), loaded.tokenizer, partial(family.transform, loaded.preprocess))


BACKEND = BackendSpec(name="torch", runtime="torch", precisions=precision_names, available=lambda device: None, load=load_torch)
