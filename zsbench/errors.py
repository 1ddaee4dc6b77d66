"""The zsbench exception family.

Every `ZsbenchError` is a user error: its message says what was expected, what was found and
how to fix it, and the CLI prints it without a traceback. Any other exception is a bug.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class ZsbenchError(Exception):
    """Base class of every error the user can fix (bad input, missing files, failed checks)."""


class ZsbenchWarning(UserWarning):
    """Base class of zsbench's warnings: something was skipped or is suspect, and the run goes on.
    The CLI prints them as one `warning: ...` line on stderr, even under --quiet."""


class UnknownNameError(ZsbenchError, KeyError):
    """A name that is not in a registry; suggests close names and lists the available ones."""

    def __init__(self, kind: str, name: str, available: Iterable[str], preferred: Iterable[str] = ()) -> None:
        """`preferred`: names to suggest before the close ones (the same thing spelt another way)."""
        choices = sorted(available)
        close = list(dict.fromkeys([*preferred, *difflib.get_close_matches(name, choices, n=3, cutoff=0.6)]))[:3]
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        listing = ", ".join(choices) if len(choices) <= 40 else ", ".join(choices[:40]) + ", ..."
        self.message = f"Unknown {kind} '{name}'.{hint} Available: {listing}."
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class UnsupportedModelTypeError(UnknownNameError):
    """A `--model_type` zsbench has no family for (CLIP_benchmark's ja_clip, or a typo)."""

    def __init__(self, model_type: str, supported: Iterable[str]) -> None:
        choices = sorted(supported)
        # A high cutoff: CLIP_benchmark's ja_clip is another family, not a misspelt open_clip.
        close = difflib.get_close_matches(model_type, choices, n=3, cutoff=0.8)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        self.message = f"--model_type {model_type} is not supported by zsbench; supported: {', '.join(choices)}.{hint}"
        ZsbenchError.__init__(self, self.message)


class NotExportableError(ZsbenchError):
    """A model type whose models are not exported to ONNX, asked of export or of an onnx/trt backend."""


class UnsupportedPrecisionError(ZsbenchError):
    """A precision that exported graphs and engines do not come in (bf16), asked of export or of an onnx/trt backend."""


class ConfigError(ZsbenchError):
    """A model configuration that is malformed or describes another kind of model."""


class CheckpointError(ZsbenchError):
    """A checkpoint that cannot be read, or whose keys or shapes do not fit the model."""


class TokenizerError(ZsbenchError):
    """A tokenizer that is missing or whose special tokens do not fit the model."""


class DatasetLayoutError(ZsbenchError):
    """A dataset root that is missing or not laid out as the loader expects."""


class PromptsError(ZsbenchError):
    """Class names or prompt templates that are missing, unreadable, or do not fit the data."""


class BadImageError(ZsbenchError):
    """An image file that cannot be decoded."""


class ExportError(ZsbenchError):
    """An ONNX export that cannot be done or whose output folder is not usable."""


class ParityError(ZsbenchError):
    """An exported graph or engine that does not compute what the PyTorch model computes."""

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


class NonFiniteError(ZsbenchError):
    """An encoder that returned NaN or Inf embeddings: no metric computed from them is a result."""


class EngineError(ZsbenchError):
    """A TensorRT engine that is stale, incompatible, or cannot be built."""


class BackendUnavailableError(ZsbenchError):
    """A backend whose runtime package or device is not present."""


class ResultError(ZsbenchError):
    """A result file that cannot be read or written."""


class UnsupportedFlagError(ZsbenchError):
    """A CLIP_benchmark flag or task that zsbench deliberately does not implement (linear probe, captioning, ...)."""


class DownloadError(ZsbenchError):
    """A fetch that failed: an unreachable host, an HTTP error, a size or checksum mismatch, an unsafe archive."""


class OfflineError(ZsbenchError):
    """Something that is not on this machine, needed while zsbench may not use the network (--offline,
    ZSBENCH_OFFLINE=1, HF_HUB_OFFLINE=1)."""


class CacheError(ZsbenchError):
    """An embedding cache folder that cannot be used (a file in its place, no permission to write)."""


class DistributedError(ZsbenchError):
    """A torchrun evaluation whose ranks cannot work together: another rank failed, or the setup is wrong."""
