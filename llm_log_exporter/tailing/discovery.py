"""Which files are followed: the regular files matching ``--file`` patterns and no ``--exclude``, by identity.

``stat`` (not ``lstat``) gives the identity, so a symlinked path follows the file it points to, and a
retargeted link reads as a rotation. Directories, FIFOs and devices that match a glob are not files to tail.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import stat
from collections.abc import Sequence

Ident = tuple[int, int]


class Discovery:
    def __init__(self, patterns: Sequence[str], exclude: Sequence[str] = ()) -> None:
        if isinstance(patterns, (str, bytes)) or isinstance(exclude, (str, bytes)):
            raise TypeError("patterns and exclude must be sequences of paths, not a single string")
        self.patterns = [os.fspath(p) for p in patterns]
        self.exclude = [os.fspath(p) for p in exclude]

    def wanted(self, path: str) -> bool:
        """Whether ``path`` is one the patterns name (and no exclude does)."""
        return any(fnmatch.fnmatch(path, p) for p in self.patterns) and not self.excluded(path)

    def excluded(self, path: str) -> bool:
        return any(fnmatch.fnmatch(path, ex) for ex in self.exclude)

    def find(self) -> dict[str, Ident]:
        """Regular files matching the patterns now, with the identity ``stat`` (symlinks followed) sees."""
        found: dict[str, Ident] = {}
        for pattern in self.patterns:
            for path in sorted(glob.glob(pattern, recursive=True)):
                if path in found or self.excluded(path):
                    continue
                try:
                    s = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(s.st_mode):
                    found[path] = (s.st_dev, s.st_ino)
        return found

    def parent_dirs(self) -> list[str]:
        """Real directories the patterns' parents name now (watched for files that appear later)."""
        dirs: list[str] = []
        for pattern in self.patterns:
            parent = os.path.dirname(pattern) or os.curdir
            dirs.extend(os.path.realpath(d) for d in glob.glob(parent, recursive=True))
        return dirs


def real_dir(path: str) -> str:
    """The directory of the file ``path`` names, behind any symlink."""
    return os.path.dirname(os.path.realpath(path))
