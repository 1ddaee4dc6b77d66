"""Writing artifact folders so that a complete one is never replaced by a half-written one.

Everything is written into a temporary folder beside the target (same filesystem, so the
final rename is atomic) and renamed into place only once complete. A crash, a full disk or
Ctrl-C leaves the previous folder (or none) at the target, never a partial graph or engine.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from zsbench.errors import ExportError

_TMP_TAG = ".tmp-"
_OLD_TAG = ".old-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(target: Path) -> None:
    """Removes staging folders of `target` left by processes that no longer run (a kill -9)."""
    if not target.parent.is_dir():
        return
    for entry in target.parent.glob(f".{target.name}{_TMP_TAG}*"):
        pid_text = entry.name.rsplit(_TMP_TAG, 1)[1].split("-", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """Yields an empty folder beside `target`; when the block ends without error it replaces `target`.

    On any exception (including KeyboardInterrupt) the staging folder is removed and `target`
    is left as it was. A full disk is reported as an `ExportError` naming the folder.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target)
    staging = target.parent / f".{target.name}{_TMP_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        _publish(staging, target)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        if err.errno == errno.ENOSPC:
            free = shutil.disk_usage(target.parent).free
            raise ExportError(
                f"The disk holding {target.parent} is full ({free / 2**30:.1f} GiB free) while writing {target.name}; "
                f"nothing was changed at {target}. Free space or write elsewhere with --out."
            ) from err
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _publish(staging: Path, target: Path) -> None:
    if not target.exists():
        os.replace(staging, target)
        return
    old = target.parent / f".{target.name}{_OLD_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def check_free_space(folder: Path, needed_bytes: int, what: str) -> None:
    """Refuses early, before gigabytes are written, when `folder`'s disk cannot hold `needed_bytes`."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    # 5% and 64 MiB of headroom for the graph protos and the JSON files.
    if free < needed_bytes * 1.05 + (64 << 20):
        raise ExportError(
            f"Not enough disk space for {what}: expected about {needed_bytes / 2**30:.2f} GiB free in {folder}, "
            f"found {free / 2**30:.2f} GiB. Free space or write elsewhere with --out."
        )
