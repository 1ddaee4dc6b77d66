"""Package attributes imported on first use, so `import zsbench` (and `zsbench --help`) never loads torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_attributes(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` (PEP 562) for `package`: `exports` maps a public name to the module defining it.

    Usage, in a package's `__init__.py`: ``__getattr__ = lazy_attributes(__name__, {"load_clip": "zsbench.models.factory"})``.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__
