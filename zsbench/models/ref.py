"""`ModelRef`: everything that names a model and its checkpoint, whatever backend runs or exports it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zsbench.types import ModelType

if TYPE_CHECKING:
    import torch

    from zsbench.models.families import LoadedClip
    from zsbench.types import Precision


@dataclass(frozen=True)
class ModelRef:
    """A model as the command line names it (`--model_type --model --pretrained --tokenizer --model_config`)."""

    model_type: ModelType
    model: str
    pretrained: str
    tokenizer: str | None = None
    model_config: str | None = None
    revision: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def checkpoint(self) -> Path:
        """`pretrained` on disk, as the family resolves it: the path itself, or a hub snapshot or file fetched
        into the Hugging Face cache (or an open_clip tag's file), fetched where missing."""
        from zsbench.models.families import get_family

        return get_family(self.model_type).checkpoint(self)

    def load(self, device: torch.device, precision: Precision) -> LoadedClip:
        """This model, its tokenizer and preprocessing on `device` in `precision`, loaded by its family."""
        from zsbench.models.families import get_family

        return get_family(self.model_type).load(self, device, precision)
