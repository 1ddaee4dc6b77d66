"""File names inside artifact folders (exports, engines) and how their manifests record paths.

A manifest records a path relative to its own folder when the path lies inside the folder, in
a sibling, or in a sibling of the parent (at most two ``..``): `engines/<name>/manifest.json`
then names its export as ``../../export/<name>`` and a checkpoint under the same project as
``../../pretrained/<name>``. A project folder holding `export/` and `engines/` (and the
checkpoint) can so be copied to another machine and still be found. Other paths stay
absolute, and manifests written with absolute paths (before this rule) still read.
"""

from __future__ import annotations

import os
from pathlib import Path

MANIFEST = "manifest.json"
PARITY = "parity.json"
_MAX_UP = 2  # `..` levels a recorded relative path may climb (the folder's grandparent: the project)


def stored_path(path: Path | str, folder: Path) -> str:
    """What a manifest in `folder` records for `path`: relative when near the folder, else absolute."""
    target, base = Path(path).resolve(), Path(folder).resolve()
    relative = Path(os.path.relpath(target, base))
    if relative.parts[:_MAX_UP + 1].count("..") > _MAX_UP or relative.is_absolute():
        return str(target)
    return relative.as_posix()


def recorded_path(value: str, folder: Path) -> Path:
    """The absolute path a manifest in `folder` means by `value` (relative values are relative to `folder`)."""
    path = Path(value)
    return path if path.is_absolute() else (Path(folder) / path).resolve()
