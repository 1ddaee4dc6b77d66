"""`ModelRef`: everything that names a model and its checkpoint, whatever backend runs or exports it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zsbench.choices import MODEL_TYPE_CHOICES
from zsbench.options import cli_field
from zsbench.types import ModelType

if TYPE_CHECKING:
    import torch

    from zsbench.models.families import LoadedClip
    from zsbench.types import Precision


@dataclass(frozen=True)
class ModelRef:
    """A model as the command line names it (`--model_type --model --pretrained --tokenizer --model_config`)."""

    model_type: ModelType = cli_field(help="Model family (see `zsbench models`).", choices=MODEL_TYPE_CHOICES, cli_default="internvl")
    model: str = cli_field(help="Model name (see `zsbench models`).")
    pretrained: str = cli_field(
        help="Checkpoint: .pth file, Hugging Face folder, hub id (ORG/NAME, fetched into the Hugging Face cache), "
             "hf://ORG/REPO/FILE, or open_clip's file or pretrained tag."
    )
    tokenizer: str | None = cli_field(None, help="Folder with tokenizer.model (InternVL .pth).")
    model_config: str | None = cli_field(None, help="InternVL config JSON (HF schema) for other sizes.")
    revision: str | None = cli_field(None, help="Hub revision (branch, tag or commit) of a --pretrained hub id or hf:// file.")

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
