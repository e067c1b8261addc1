"""Size-based rotation of the usage log, done by its writers (standard library only; install-hook copies it).

A pod's ``emptyDir`` or a laptop's disk must not fill with one ever-growing ``usage.jsonl``. When the next
line would take the file past ``max_bytes``, the writer renames ``usage.jsonl`` to ``usage.jsonl.1``
(``.1`` to ``.2`` and so on; the oldest of ``backups`` is replaced) and the next line creates a new
``usage.jsonl``: logrotate's ``create`` scheme, which the exporter follows by identity, so no line is lost
or counted twice (follow ``usage.jsonl*`` so even a backup made between two of its polls is read).

Several processes may append to one log (the workers of a proxy). The size is read from the ``stat`` the
writer makes before every line anyway, so rotation costs nothing until it is due; then the rename happens
under an exclusive ``flock`` on a lock file beside the log (``.usage.jsonl.lock``) and only if the path
still names the file that writer saw, still over the limit: one writer rotates, the others reopen the new
file. A line written by another process between its own ``stat`` and write lands in the renamed file,
which the exporter still reads. Rotation is off unless ``max_bytes`` is set (``LLM_USAGE_LOG_MAX_BYTES``).
The lock needs POSIX ``flock``; without it (Windows) the writers must not share a log.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

MAX_BYTES_ENV_VAR = "LLM_USAGE_LOG_MAX_BYTES"
BACKUPS_ENV_VAR = "LLM_USAGE_LOG_BACKUPS"
DEFAULT_BACKUPS = 5
_LOCK_FLAGS = os.O_RDONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
LOCK_WAIT = 2.0  # seconds; a rename takes microseconds, so only a stuck or hostile holder waits this long
RETRY_AFTER = 30.0  # seconds without rotation attempts after one failed, so lines are not slowed down

T = TypeVar("T")
logger = logging.getLogger("llm_log_exporter.callback")


def parse_size(value: str | int) -> int:
    """Bytes from ``104857600``, ``100M`` or ``100MiB`` (K, M, G: powers of 1024); 0 means no rotation."""
    if isinstance(value, str):
        text = value.strip().lower().removesuffix("ib").removesuffix("b")
        unit = text[-1:] if text[-1:] in _UNITS else ""
        number = text[: len(text) - len(unit)].strip()
        if not number.isdigit():
            raise ValueError(f"size {value!r} is not a whole number of bytes (suffixes K, M, G allowed)")
        value = int(number) * _UNITS[unit]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"size {value!r} must be a whole number of bytes, 0 or more")
    return value


def parse_backups(value: str | int) -> int:
    """How many rotated files to keep: at least 1."""
    number = int(value.strip()) if isinstance(value, str) and value.strip().isdigit() else value
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError(f"backups {value!r} must be a whole number, at least 1")
    return number


def resolve(value: Any, env_var: str, parse: Callable[[Any], T], default: T) -> T:
    """An explicit argument (a bad one raises), else the environment variable, else ``default``.

    A bad environment value must not break the program the callback runs in (aider, a proxy): it is
    logged and the default is used.
    """
    if value is not None:
        return parse(value)
    text = os.environ.get(env_var, "").strip()
    if not text:
        return default
    try:
        return parse(text)
    except ValueError as err:
        logger.warning("llm_log_exporter: ignoring %s=%r (%s); using %r", env_var, text, err, default)
        return default


def backup_name(path: str, n: int) -> str:
    return f"{path}.{n}"


def lock_name(path: str) -> str:
    """``dir/.usage.jsonl.lock``: hidden, and outside the ``usage.jsonl*`` glob the exporter follows."""
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.lock")


class Rotation:
    """Rotates one log path when it would grow past ``max_bytes``; ``mode`` is the log's (for the lock file)."""

    def __init__(self, max_bytes: int, backups: int = DEFAULT_BACKUPS, mode: int = 0o600) -> None:
        if max_bytes < 1 or backups < 1:
            raise ValueError("max_bytes and backups must be at least 1")
        self.max_bytes = max_bytes
        self.backups = backups
        self.mode = mode
        self.rotations = 0  # done by this process
        self.errors = 0
        self._seen: set[int | None] = set()
        self._next_try = 0.0  # monotonic time; after a failure, rotation rests for RETRY_AFTER


    def due(self, size: int, incoming: int) -> bool:
        """True when ``incoming`` more bytes would take a non-empty file past the limit."""
        return size > 0 and size + incoming > self.max_bytes and time.monotonic() >= self._next_try

    def rotate(self, path: str, ident: tuple[int, int] | None, incoming: int) -> bool:
        """Rename ``path`` away if it is still the file ``ident`` (device, inode) and still due.

        The caller then reopens ``path`` in any case: if another writer rotated first, the path already
        names (or will name) a new file. A rotation that fails (a read-only lock directory, a backup
        owned by someone else) is logged once per error and skipped: the line is written to the current
        file instead, never lost. True when this call rotated.
        """
        try:
            lock = os.open(lock_name(path), _LOCK_FLAGS, self.mode)
            try:
                if not _lock(lock):
                    raise BlockingIOError(errno.EWOULDBLOCK, f"{lock_name(path)} stayed locked for {LOCK_WAIT} s")
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    return False  # rotated by another writer, not yet recreated
                if (st.st_dev, st.st_ino) != ident or not self.due(st.st_size, incoming):
                    return False  # another writer rotated first
                for n in range(self.backups - 1, 0, -1):
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(backup_name(path, n), backup_name(path, n + 1))
                os.replace(path, backup_name(path, 1))
            finally:
                os.close(lock)  # releases the flock
        except OSError as err:
            self.errors += 1
            self._next_try = time.monotonic() + RETRY_AFTER
            if err.errno not in self._seen:
                self._seen.add(err.errno)
                logger.warning("llm_log_exporter: cannot rotate %s (%s); writing on to it, next try in %d s",
                               path, err, RETRY_AFTER)
            return False
        self.rotations += 1
        return True


def _lock(fd: int) -> bool:
    """An exclusive flock on ``fd`` within ``LOCK_WAIT`` seconds; the LLM call never waits longer."""
    if fcntl is None:
        return True
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)
