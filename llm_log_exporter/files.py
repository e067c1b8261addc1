"""Files written whole or not at all: a temporary file beside the target, flushed to disk, then renamed.

A crash or a kill leaves the old content or the new, never half of it (state files, backfills). Only
regular files are replaced that way: a character device, a FIFO or a socket named as the output (such as
``/dev/null``) is written to directly, since renaming over it would replace the device itself.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import BinaryIO


def _fsync_dir(directory: str) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on a directory
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def is_special(path: str) -> bool:
    """Whether ``path`` exists and is not a regular file (a device, a FIFO, a socket)."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


def write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data``: the old content or the new survives a crash, never a mix."""
    with atomic_output(path, mode) as out:
        out.write(data)


@contextlib.contextmanager
def atomic_output(path: str, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` only when the block ends without an exception."""
    if is_special(path):
        with open(path, "wb") as f:
            yield f
        return
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as err:  # name the file the caller asked for, not a temporary name
        raise OSError(err.errno, err.strerror, path) from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)
