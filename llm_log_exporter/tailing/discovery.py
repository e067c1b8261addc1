"""Which files are followed: the regular files matching ``--file`` patterns and no ``--exclude``, by identity.

``stat`` (not ``lstat``) gives the identity, so a symlinked path follows the file it points to, and a
retargeted link reads as a rotation. Directories, FIFOs and devices that match a glob are not files to tail.

Each pattern also gets a state, so the exporter can say what it is *not* reading: ``following`` (it
matches regular files), ``missing`` (it matches nothing), ``not_a_file`` (only directories or other
non-regular files) or ``unreadable`` (a match, or the path's directory, cannot be opened; the tailer adds
the files whose ``open`` fails).
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import os
import stat
from collections.abc import Sequence

Ident = tuple[int, int]

FOLLOWING, MISSING, NOT_A_FILE, UNREADABLE = "following", "missing", "not_a_file", "unreadable"
FILE_STATES = (FOLLOWING, MISSING, NOT_A_FILE, UNREADABLE)


class Discovery:
    def __init__(self, patterns: Sequence[str], exclude: Sequence[str] = ()) -> None:
        if isinstance(patterns, (str, bytes)) or isinstance(exclude, (str, bytes)):
            raise TypeError("patterns and exclude must be sequences of paths, not a single string")
        self.patterns = [os.fspath(p) for p in patterns]
        self.exclude = [os.fspath(p) for p in exclude]
        # From the last ``find``: each pattern's regular files, or its state and why when it has none;
        # each file's (size, mtime in ns), what tells a closed file has changed.
        self.matches: dict[str, list[str]] = {}
        self.unmatched: dict[str, tuple[str, str]] = {}
        self.sizes: dict[str, tuple[int, int]] = {}

    def wanted(self, path: str) -> bool:
        """Whether ``path`` is one the patterns name (and no exclude does)."""
        return any(fnmatch.fnmatch(path, p) for p in self.patterns) and not self.excluded(path)

    def excluded(self, path: str) -> bool:
        return any(fnmatch.fnmatch(path, ex) for ex in self.exclude)

    def find(self) -> dict[str, Ident]:
        """Regular files matching the patterns now, with the identity ``stat`` (symlinks followed) sees.

        Raises ``OSError`` when the process has no descriptor left: ``glob`` would silently list nothing,
        and every followed file would look deleted."""
        os.close(os.open(os.devnull, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
        found: dict[str, Ident] = {}
        sizes: dict[str, tuple[int, int]] = {}
        matches: dict[str, list[str]] = {}
        unmatched: dict[str, tuple[str, str]] = {}
        for pattern in self.patterns:
            regular: list[str] = []
            other = ""
            for path in sorted(glob.glob(pattern, recursive=True)):
                if self.excluded(path):
                    continue
                if path in found:
                    regular.append(path)
                    continue
                try:
                    s = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(s.st_mode):
                    found[path] = (s.st_dev, s.st_ino)
                    sizes[path] = (s.st_size, s.st_mtime_ns)
                    regular.append(path)
                else:
                    other = other or path
            matches[pattern] = regular
            if not regular:
                unmatched[pattern] = (NOT_A_FILE, other) if other else _absent(pattern)
        self.matches, self.unmatched, self.sizes = matches, unmatched, sizes
        return found

    def parent_dirs(self) -> list[str]:
        """Real directories the patterns' parents name now (watched for files that appear later)."""
        dirs: list[str] = []
        for pattern in self.patterns:
            parent = os.path.dirname(pattern) or os.curdir
            dirs.extend(os.path.realpath(d) for d in glob.glob(parent, recursive=True))
        return dirs


def probe(patterns: Sequence[str], exclude: Sequence[str] = ()) -> dict[str, tuple[str, str]]:
    """Each pattern's state and why, now, opening (and closing) every file it matches: ``--require-files``."""
    discovery = Discovery(patterns, exclude)
    discovery.find()
    out: dict[str, tuple[str, str]] = {}
    for pattern in discovery.patterns:
        out[pattern] = discovery.unmatched.get(pattern, (FOLLOWING, ""))
        for path in discovery.matches.get(pattern, []):
            try:
                os.close(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)))
            except OSError as err:
                out[pattern] = (UNREADABLE, f"{path}: {err.strerror or err}")
                break
    return out


def _absent(pattern: str) -> tuple[str, str]:
    """Why a pattern matches nothing: a path that exists but cannot be looked at is unreadable."""
    if glob.has_magic(pattern):
        return MISSING, ""
    try:
        os.stat(pattern)
    except PermissionError as err:
        return UNREADABLE, err.strerror or str(err)
    except OSError as err:
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            return MISSING, ""
        return UNREADABLE, err.strerror or str(err)
    return MISSING, ""  # appeared since the glob ran: the next poll picks it up


def real_dir(path: str) -> str:
    """The directory of the file ``path`` names, behind any symlink."""
    return os.path.dirname(os.path.realpath(path))
