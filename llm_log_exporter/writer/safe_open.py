"""Open the usage log for appending without being tricked by other users (standard library only).

Runs inside the user's LLM process through the callback. The threat is the classic shared-directory
one: when ``LLM_USAGE_LOG`` points into a directory anyone can write (``/tmp``), another local user
can plant a symlink there (``/tmp/usage.jsonl -> ~/.bashrc``) so our appends land in a file of their
choosing, a hard link to one of our files, or a file of their own that we would fill for them to read.

The rule (docs/security.md): inside a world-writable directory the log must be a regular file that
we own with a single link, opened with ``O_NOFOLLOW`` so a symlink swapped in after any check still
fails; and no directory on the way may be a symlink owned by another user (root excepted) sitting in
a world-writable directory. Elsewhere paths are followed as usual: the directory's owner decides.
New files are created 0600 and missing directories 0700.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


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


def _makedirs(directory: str) -> None:
    """Like ``os.makedirs`` but every new level is 0700 (makedirs gives intermediate levels 0777 & ~umask)."""
    head = os.path.dirname(directory)
    if head and head != directory and not os.path.isdir(head):
        _makedirs(head)
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)


def open_append(path: str) -> int:
    """An fd open for appending to ``path`` (created 0600), under the rule above."""
    parent = os.path.dirname(path) or os.curdir
    check_ancestors(parent)
    try:
        guarded = _world_writable(os.stat(parent))
    except FileNotFoundError:
        _makedirs(parent)
        guarded = _world_writable(os.stat(parent))
    try:
        fd = os.open(path, APPEND_FLAGS | (_O_NOFOLLOW if guarded else 0), 0o600)
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
