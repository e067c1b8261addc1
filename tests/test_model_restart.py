"""Stateful model test: a real file, the real pipeline with a real --state-file, random operations.

Operations: append (whole and partial lines, some over --max-line-bytes), wake (poll), periodic state
save, rotate by rename (the writer keeps appending to the old fd, then reopens), copytruncate, truncate in
place, delete + recreate, SIGTERM-style stop, SIGKILL-style crash, restart. The model predicts *exactly*
which lines are counted after every wake: each line at most once, and every line counted except those the
guarantee gives up (see docs/operations.md, "Guarantees"):

* bytes destroyed before the exporter read them: a truncation (in place, or copytruncate while the
  exporter is up) or a deletion while the exporter is down, of lines written after the last read — or,
  after a crash, after the last state save;
* with an exact ``--file`` path, a file renamed away before the exporter followed it, or while it was
  down when the last save had consumed nothing of it (the glob variant, which also matches rotated names,
  reads those).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.helpers import examples
from tests.pipeline import Pipeline

MAX_LINE = 120

PATH, RENAMED, COPY, TRUNCATED, DELETED = "path", "renamed", "copy", "truncated", "deleted"


class Gen:
    """One file content: what was written, where the bytes are now, what the exporter holds of it."""

    def __init__(self) -> None:
        self.content = bytearray()
        self.where = PATH
        # None; "own": an fd on its inode; "inherit": the fd of the content it replaced by truncation (the
        # saved position still describes the old content until a poll); "copy": restored onto its copy.
        self.stream: str | None = None
        self.read = 0  # bytes consumed by the live exporter (complete lines)
        self.poll_len = 0  # bytes read at the last poll (a held partial line is poll_len - read)
        self.saved_read = 0
        self.saved_pos = False  # the last save holds a position for it

    def read_all(self) -> None:
        """What one poll consumes: every complete line; a partial one over MAX_LINE is dropped (skipped)."""
        self.poll_len = len(self.content)
        self.read = self.content.rfind(b"\n") + 1
        if self.poll_len - self.read > MAX_LINE:
            self.read = self.poll_len

    def counted(self) -> list[str]:
        out = []
        for raw in bytes(self.content[: self.read]).split(b"\n")[:-1]:
            if len(raw) <= MAX_LINE:
                out.append(json.loads(raw)["model"])
        return out


class TailerModel(RuleBasedStateMachine):
    glob = False

    @initialize()
    def setup(self) -> None:
        self.dir = tempfile.mkdtemp()
        self.path = Path(self.dir) / "usage.jsonl"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.gens = [Gen()]
        self.next_id = 0
        self.pending = b""
        self.suffix = 0
        pattern = f"{self.path}*" if self.glob else str(self.path)  # exact path: restore scans the directory
        self.pipe = Pipeline(pattern, state=Path(self.dir) / "state.json", exclude=["*.copy*"],
                             max_line_bytes=MAX_LINE, max_models=100_000)
        self.up = True
        self.poll()

    def teardown(self) -> None:
        if getattr(self, "pipe", None) is not None:
            if not self.up:
                self.start()
            try:
                self.poll()
            finally:
                self.pipe.crash()
            os.close(self.fd)
            shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ helpers

    @property
    def current(self) -> Gen:
        return self.gens[-1]

    def _write(self, gen: Gen, n: int, width: int) -> None:
        while n > 0:
            if not self.pending:
                pad = "é" * (width % 7) + "x" * (width * (self.next_id % 5))
                self.pending = json.dumps({"v": 1, "model": f"L{self.next_id}", "pad": pad},
                                          ensure_ascii=False).encode() + b"\n"
                self.next_id += 1
            piece, self.pending = self.pending[:n], self.pending[n:]
            os.write(self.fd, piece)
            gen.content += piece
            n -= len(piece)

    def _new_gen(self) -> None:
        """The writer starts a new file at the path; a half-written line is abandoned."""
        self.pending = b""
        os.close(self.fd)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.gens.append(Gen())

    def check(self) -> None:
        want = Counter(m for g in self.gens for m in g.counted())
        assert self.pipe.counted_in_store() == want

    # ------------------------------------------------------------------ rules

    @rule(n=st.integers(1, 150), width=st.integers(0, 20))
    def write(self, n: int, width: int) -> None:
        self._write(self.current, n, width)

    @precondition(lambda self: self.up)
    @rule()
    def poll(self) -> None:
        self.pipe.tick()
        for g in self.gens:
            if g.where == PATH or (g.where == RENAMED and (g.stream or self.glob)):
                g.read_all()
                g.stream = "own"
            elif (g.where == DELETED and g.stream in ("own", "inherit")) or (g.where == COPY and g.stream == "copy"):
                g.read_all()
                g.stream = None  # drained, then released
            else:
                g.stream = None if g.where in (COPY, TRUNCATED, DELETED) else g.stream
        self.check()

    @precondition(lambda self: self.up)
    @rule()
    def save(self) -> None:
        self.pipe.save()
        for g in self.gens:
            g.saved_read = g.read
            held_and_truncated = g.where in (COPY, TRUNCATED) and g.poll_len > g.read
            g.saved_pos = g.stream in ("own", "copy") and not held_and_truncated

    @rule(n=st.integers(0, 40), width=st.integers(0, 20), poll_first=st.booleans())
    def rotate(self, n: int, width: int, poll_first: bool) -> None:
        if poll_first and self.up:
            self.poll()
        self.suffix += 1
        os.rename(self.path, f"{self.path}.{self.suffix}")
        old = self.current
        old.where = RENAMED
        self._write(old, n, width)  # the writer has not reopened yet
        self._new_gen()

    @rule(poll_first=st.booleans(), copy=st.booleans())
    def truncate(self, poll_first: bool, copy: bool) -> None:
        """copytruncate (copy kept beside the file, excluded from the glob) or truncation in place."""
        if poll_first and self.up:
            self.poll()
        old = self.current
        if copy:
            self.suffix += 1
            shutil.copy(self.path, f"{self.path}.copy{self.suffix}")
        os.truncate(self.path, 0)
        old.where = COPY if copy else TRUNCATED
        self.pending = b""  # the rest of a half-written line would be garbage at the start: abandon it
        self.gens.append(Gen())
        if old.stream in ("own", "inherit"):
            self.current.stream = "inherit"  # same inode, same fd: it reads the new content

    @rule(poll_first=st.booleans())
    def delete(self, poll_first: bool) -> None:
        if poll_first and self.up:
            self.poll()
        os.unlink(self.path)
        self.current.where = DELETED
        self._new_gen()

    @precondition(lambda self: self.up)
    @rule(clean=st.booleans())
    def down(self, clean: bool) -> None:
        """SIGTERM (final save) or SIGKILL (no save)."""
        if clean:
            self.save()
        self.pipe.crash()
        self.up = False

    @precondition(lambda self: not self.up)
    @rule()
    def start(self) -> None:
        self.pipe.start()
        self.up = True
        for g in self.gens:
            g.read, g.stream = g.saved_read, None
            # Nothing consumed (offset 0): only resumed at its own path, never looked for elsewhere.
            if g.saved_pos and (g.where == PATH or (g.where in (RENAMED, COPY) and g.saved_read > 0)):
                g.stream = "copy" if g.where == COPY else "own"
        self.poll()

    @invariant()
    def offsets_never_run_ahead(self) -> None:
        for g in self.gens:
            assert g.read <= len(g.content)


class TestExactPath(TailerModel.TestCase):
    settings = settings(max_examples=examples(200), stateful_step_count=40, deadline=None)


class GlobModel(TailerModel):
    glob = True


class TestGlobMatchingRotatedNames(GlobModel.TestCase):
    settings = settings(max_examples=examples(200), stateful_step_count=40, deadline=None)
