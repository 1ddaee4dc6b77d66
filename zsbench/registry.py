"""A small typed registry: names -> entries.

Entries may be registered lazily as a ``"module:attribute"`` string, so that looking up a
name (for `--help`, listings, plans) never imports a heavy runtime such as tensorrt.
"""

from __future__ import annotations

import importlib
from typing import Any, Generic, TypeVar

from zsbench.errors import UnknownNameError

T = TypeVar("T")


def import_attribute(path: str) -> Any:
    """The attribute a ``"module:attribute"`` string names (imported now)."""
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


class Registry(Generic[T]):
    """Maps names to entries of one kind; registering a name twice is an error."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}

    def add(self, name: str, entry: T | str) -> None:
        """Registers `entry` (or a lazy ``"module:attribute"`` string) under `name`."""
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._entries[name] = entry

    def get(self, name: str) -> T:
        """Returns the entry for `name`, importing it first if it was registered lazily."""
        if name not in self._entries:
            raise UnknownNameError(self.kind, name, self._entries)
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = import_attribute(entry)
            self._entries[name] = entry
        return entry  # type: ignore[return-value]

    def names(self, *, sort: bool = True) -> list[str]:
        """Registered names, sorted (or in registration order)."""
        return sorted(self._entries) if sort else list(self._entries)

    def remove(self, name: str) -> None:
        """Unregisters `name` (a plugin registered for a while, as the extension recipes' tests do)."""
        if name not in self._entries:
            raise UnknownNameError(self.kind, name, self._entries)
        del self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries
