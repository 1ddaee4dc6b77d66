"""What a backend loader returns; the `Encoder` interface itself lives in `zsbench.runtime.encoder`
(the parity check drives the same encoders eval runs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from zsbench.runtime.encoder import Encoder


@dataclass(frozen=True)
class LoadedModel:
    """What a backend loader returns: the encoder, the tokenizer that feeds it, and its image transforms.

    `transforms(task)` is the image transform of a task: the task is a run parameter, so one loaded model
    serves classification and retrieval runs alike, each with its own transform.
    """

    encoder: Encoder
    tokenizer: Callable
    transforms: Callable[[str], Callable]

    def transform(self, task: str) -> Callable:
        """The image transform for `task` (``zeroshot_classification`` or ``zeroshot_retrieval``)."""
        return self.transforms(task)
