"""What a backend loader returns; the `Encoder` interface itself lives in `zsbench.runtime.encoder`
(the parity check drives the same encoders eval runs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from zsbench.runtime.encoder import Encoder


@dataclass
class LoadedModel:
    """What a backend loader returns: the encoder, and the transform and tokenizer that feed it."""

    encoder: Encoder
    transform: Callable
    tokenizer: Callable
