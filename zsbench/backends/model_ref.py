"""`ModelRef`: everything that names a model and its checkpoint, whatever backend runs it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


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
