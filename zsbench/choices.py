"""The choices of the command line's closed options, read from the registries (never a copy of their names)."""

from __future__ import annotations

from collections.abc import Sequence

from zsbench.backends import BACKENDS, EXPORTED_BACKENDS
from zsbench.errors import UnsupportedModelTypeError
from zsbench.models.families import MODEL_FAMILIES
from zsbench.options import Choices
from zsbench.types import EXPORT_PRECISIONS, PRECISIONS, TASKS


def _unsupported_model_type(value: str, names: Sequence[str]) -> str:
    return str(UnsupportedModelTypeError(value, names))


BACKEND_CHOICES = Choices("backend", BACKENDS.names)
EXPORTED_BACKEND_CHOICES = Choices("backend", lambda: EXPORTED_BACKENDS)
# The dtype table (`zsbench.models.DTYPES`) is keyed by exactly these; it lives with torch, these do not.
PRECISION_CHOICES = Choices("precision", lambda: PRECISIONS)
EXPORT_PRECISION_CHOICES = Choices("precision", lambda: EXPORT_PRECISIONS)
MODEL_TYPE_CHOICES = Choices("model_type", MODEL_FAMILIES.names, _unsupported_model_type)
TASK_CHOICES = Choices("task", lambda: (*TASKS, "auto"))
