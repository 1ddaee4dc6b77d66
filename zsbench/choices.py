"""The choices of the command line's closed options, read from the registries (never a copy of their names)."""

from __future__ import annotations

from collections.abc import Sequence

from zsbench.backends import BACKENDS, checking_backends
from zsbench.errors import UnsupportedModelTypeError
from zsbench.models.families import MODEL_FAMILIES
from zsbench.options import Choices
from zsbench.precisions import export_precisions, precision_names
from zsbench.types import TASKS


def _unsupported_model_type(value: str, names: Sequence[str]) -> str:
    return str(UnsupportedModelTypeError(value, names))


BACKEND_CHOICES = Choices("backend", BACKENDS.names)
CHECKING_BACKEND_CHOICES = Choices("backend", checking_backends)
PRECISION_CHOICES = Choices("precision", precision_names)
EXPORT_PRECISION_CHOICES = Choices("precision", export_precisions)
MODEL_TYPE_CHOICES = Choices("model_type", MODEL_FAMILIES.names, _unsupported_model_type)
TASK_CHOICES = Choices("task", lambda: (*TASKS, "auto"))
