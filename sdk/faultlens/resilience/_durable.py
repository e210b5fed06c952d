"""Atomic, durable replacement of a small file: what the halt state file and checkpoints share.

:func:`replace_file` writes the new content to a temporary file in the same
directory, ``fsync``\\ s it, renames it over the old file with ``os.replace`` and
then ``fsync``\\ s the directory. A crash (``kill -9``, a power cut on a file
system that honours ``fsync``) at any point leaves either the old content or the
new one, never a torn or empty file. A crash between the temporary file's
creation and the rename leaves that temporary file behind;
:func:`remove_temporaries` deletes such leftovers once the caller knows nobody
else is writing.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Final

_SUFFIX: Final = ".tmp"


def _prefix(path: Path) -> str:
    """Temporary files of ``path`` are named ``.<name>.<random>.tmp`` beside it."""
    return f".{path.name}."


def replace_file(path: Path, data: bytes) -> None:
    """Replace ``path``'s content with ``data`` atomically and durably.

    Creates the parent directories if needed. Raises ``OSError`` (disk full,
    read-only or missing permissions, …) with the old content intact and no
    temporary file left behind.
    """
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=_prefix(path), suffix=_SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_directory(directory)


def remove_file(path: Path) -> bool:
    """Delete ``path`` durably; False if it did not exist. Raises ``OSError``."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_directory(path.parent)
    return True


def remove_temporaries(path: Path) -> int:
    """Delete the temporary files a crashed :func:`replace_file` of ``path`` left; how many.

    Only safe while no other process may be replacing ``path``. Never raises.
    """
    prefix = _prefix(path)
    removed = 0
    try:
        candidates = [
            entry
            for entry in os.scandir(path.parent)
            if entry.name.startswith(prefix) and entry.name.endswith(_SUFFIX)
        ]
    except OSError:
        return 0
    for entry in candidates:
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed += 1
    return removed


def fsync_directory(directory: Path) -> None:
    """Make a rename or an unlink in ``directory`` durable (POSIX); a no-op where
    directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
