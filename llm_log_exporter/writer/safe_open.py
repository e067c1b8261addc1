"""Open the usage log for appending without being tricked by other users (standard library only).

Runs inside the user's LLM process through the callback. The threat is the classic shared-directory
one: when ``LLM_USAGE_LOG`` points into a directory anyone can write (``/tmp``), another local user
can plant a symlink there (``/tmp/usage.jsonl -> ~/.bashrc``) so our appends land in a file of their
choosing, a hard link to one of our files, or a file of their own that we would fill for them to read.

The rule (docs/security.md): inside a world-writable directory the log must be a regular file that
we own with a single link, opened with ``O_NOFOLLOW`` so a symlink swapped in after any check still
fails; and no directory on the way may be a symlink owned by another user (root excepted) sitting in
a world-writable directory. Elsewhere paths are followed as usual: the directory's owner decides.
New files are created with exactly the requested mode (0600 unless the user asks for a readable one, see
``parse_mode``), whatever the umask; missing directories 0700 plus the read/search bits that mode gives.
"""

from __future__ import annotations

import errno
import os
import stat

APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
DEFAULT_MODE = 0o600
MODE_ENV_VAR = "LLM_USAGE_LOG_MODE"


def parse_mode(value: str | int) -> int:
    """A log file mode from ``0640``, ``640``, ``0o640`` or an int: the owner reads and writes, nobody else
    writes unless it is the group (several writer UIDs in one group), nothing is executable or special."""
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("0o")
        if not text or any(c not in "01234567" for c in text):
            raise ValueError(f"file mode {value!r} is not an octal number such as 0640")
        value = int(text, 8)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"file mode {value!r} is not an octal number such as 0640")
    if value & ~0o666 or value & 0o600 != 0o600 or value & 0o002:
        raise ValueError(f"file mode {value:#o}: the owner must read and write it, others must not write it, "
                         "and nothing may be executable (e.g. 0600, 0640, 0644, 0660)")
    return value


def dir_mode(mode: int) -> int:
    """The mode for a directory we create for a log of ``mode``: whoever may read the log may reach it."""
    out = 0o700
    if mode & 0o040:
        out |= 0o050
    if mode & 0o020:
        out |= 0o020  # group writers also rotate (rename) in it
    if mode & 0o004:
        out |= 0o005
    return out


class UnsafePathError(PermissionError):
    """The path breaks the world-writable-directory rule; nothing was written."""


def _world_writable(st: os.stat_result) -> bool:
    return stat.S_ISDIR(st.st_mode) and bool(st.st_mode & stat.S_IWOTH)


def check_ancestors(directory: str) -> None:
    """Refuse a directory symlink owned by someone else (not root) inside a world-writable directory."""
    uid = os.geteuid()
    current = os.path.abspath(directory)
    parts = [p for p in current.split(os.sep) if p]
    here = os.sep
    for name in parts:
        try:
            parent_writable = _world_writable(os.stat(here))
            link = os.lstat(os.path.join(here, name))
        except FileNotFoundError:
            return  # the rest does not exist yet: makedirs creates it, as ours
        if parent_writable and stat.S_ISLNK(link.st_mode) and link.st_uid not in (uid, 0):
            raise UnsafePathError(
                errno.EPERM,
                f"refusing to follow a symlink owned by uid {link.st_uid} in world-writable directory {here}",
                os.path.join(here, name),
            )
        here = os.path.realpath(os.path.join(here, name))


def _makedirs(directory: str, mode: int = 0o700) -> None:
    """Like ``os.makedirs`` but every new level gets exactly ``mode`` (makedirs gives 0777 & ~umask)."""
    head = os.path.dirname(directory)
    if head and head != directory and not os.path.isdir(head):
        _makedirs(head, mode)
    try:
        os.mkdir(directory, mode)
    except FileExistsError:
        return
    if mode & ~0o700:
        os.chmod(directory, mode)  # the umask may have taken the group/other bits


def _open_new_or_existing(path: str, flags: int, mode: int) -> int:
    """Open ``path``; when this call creates it, give it exactly ``mode`` (the umask only ever takes bits away)."""
    try:
        fd = os.open(path, flags | os.O_EXCL, mode)
    except FileExistsError:  # also a symlink: opened again below, under the caller's O_NOFOLLOW rule
        return os.open(path, flags, mode)
    try:
        if os.fstat(fd).st_mode & 0o7777 != mode:
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_append(path: str, mode: int = DEFAULT_MODE) -> int:
    """An fd open for appending to ``path`` (created with ``mode``), under the rule above."""
    parent = os.path.dirname(path) or os.curdir
    check_ancestors(parent)
    try:
        guarded = _world_writable(os.stat(parent))
    except FileNotFoundError:
        _makedirs(parent, dir_mode(mode))
        guarded = _world_writable(os.stat(parent))
    try:
        fd = _open_new_or_existing(path, APPEND_FLAGS | (_O_NOFOLLOW if guarded else 0), mode)
    except OSError as err:
        if guarded and err.errno == errno.ELOOP:
            raise UnsafePathError(
                errno.EPERM, f"refusing to follow a symlink in world-writable directory {parent}", path
            ) from None
        raise
    if guarded:
        try:
            st = os.fstat(fd)
            problem = (
                "it is not a regular file" if not stat.S_ISREG(st.st_mode)
                else f"it is owned by uid {st.st_uid}" if st.st_uid != os.geteuid()
                else f"it has {st.st_nlink} links" if st.st_nlink != 1
                else None
            )
        except BaseException:
            os.close(fd)
            raise
        if problem is not None:
            os.close(fd)
            raise UnsafePathError(errno.EPERM, f"refusing to append: {problem} (world-writable dir {parent})", path)
    return fd
