"""Tailer scenarios on real files: rotation, truncation, partial and oversized lines, globs, wake-ups.

Deterministic: tests drive ``poll_once()`` themselves; only the ``run()`` tests use threads, with short
deadlines.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_log_exporter import tailer as tailer_mod
from llm_log_exporter.tailer import Tailer
from llm_log_exporter.tailing import inotify as inotify_mod
from llm_log_exporter.tailing.inotify import WakeWatch
from tests.helpers import examples


class Rec:
    """Recording sink: every call in order, plus a flat per-line view with line numbers and offsets."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.lines: list[tuple[str, int, int, bytes]] = []  # (path, lineno, offset, line)
        self.got_lines = threading.Event()

    def on_lines(self, path: str, lines: list[bytes], first_lineno: int, first_offset: int) -> None:
        self.calls.append(("lines", path, list(lines), first_lineno, first_offset))
        offset = first_offset
        for i, line in enumerate(lines):
            self.lines.append((path, first_lineno + i, offset, line))
            offset += len(line) + 1
        self.got_lines.set()

    def on_read(self, path: str, nbytes: int) -> None:
        self.calls.append(("read", path, nbytes))

    def on_oversized(self, path: str, lineno: int, offset: int) -> None:
        self.calls.append(("oversized", path, lineno, offset))

    def on_incomplete(self, path: str, nbytes: int) -> None:
        self.calls.append(("incomplete", path, nbytes))

    def on_rotation(self, path: str) -> None:
        self.calls.append(("rotation", path))

    def on_truncation(self, path: str) -> None:
        self.calls.append(("truncation", path))

    def on_open_error(self, path: str, err: OSError) -> None:
        self.calls.append(("open_error", path, err))

    def texts(self) -> list[bytes]:
        return [line for _, _, _, line in self.lines]

    def of(self, kind: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == kind]


def write(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


@pytest.fixture
def rec() -> Rec:
    return Rec()


@pytest.fixture
def make(rec: Rec) -> Iterator[Callable[..., Tailer]]:
    made: list[Tailer] = []

    def factory(*patterns: Path | str, **kw: object) -> Tailer:
        kw.setdefault("use_inotify", False)
        t = Tailer([str(p) for p in patterns], rec, **kw)  # type: ignore[arg-type]
        made.append(t)
        return t

    yield factory
    for t in made:
        t.close()


# ----------------------------------------------------------------------------- appends and splitting


def test_append_one_line(make, rec, log):
    log.write_bytes(b"")
    t = make(log)
    t.poll_once()
    assert rec.lines == []
    write(log, b'{"a":1}\n')
    t.poll_once()
    assert rec.lines == [(str(log), 1, 0, b'{"a":1}')]
    assert rec.of("read") == [("read", str(log), 8)]
    t.poll_once()
    assert len(rec.lines) == 1


def test_many_lines_in_one_write_are_one_batch(make, rec, log):
    log.write_bytes(b"".join(b"line%d\n" % i for i in range(1000)))
    make(log).poll_once()
    assert rec.texts() == [b"line%d" % i for i in range(1000)]
    assert len(rec.of("lines")) == 1


def test_line_split_across_writes(make, rec, log):
    t = make(log)
    write(log, b"line ")
    t.poll_once()
    assert rec.lines == []
    write(log, b"2\n")
    t.poll_once()
    assert rec.lines == [(str(log), 1, 0, b"line 2")]


def test_split_inside_multibyte_utf8_char(make, rec, log):
    t = make(log)
    euro = "€".encode()
    write(log, b'{"m":"' + euro[:1])
    t.poll_once()
    write(log, euro[1:] + b'"}\n')
    t.poll_once()
    assert [line.decode() for line in rec.texts()] == ['{"m":"€"}']


def test_multibyte_utf8_split_by_small_read_chunk(make, rec, log):
    text = ("ünïcödé €uro ✓\n" * 5).encode()
    log.write_bytes(text)
    make(log, read_chunk=3).poll_once()
    assert rec.texts() == text.split(b"\n")[:-1]
    assert [lineno for _, lineno, _, _ in rec.lines] == [1, 2, 3, 4, 5]


def test_split_between_cr_and_lf(make, rec, log):
    t = make(log)
    write(log, b'{"a":1}\r')
    t.poll_once()
    assert rec.lines == []
    write(log, b"\n")
    t.poll_once()
    assert rec.texts() == [b'{"a":1}\r']


def test_empty_lines_passed_through(make, rec, log):
    log.write_bytes(b"\n\na\n\n")
    make(log).poll_once()
    assert rec.lines == [
        (str(log), 1, 0, b""),
        (str(log), 2, 1, b""),
        (str(log), 3, 2, b"a"),
        (str(log), 4, 4, b""),
    ]


def test_line_numbers_and_offsets(make, rec, log):
    t = make(log, read_chunk=7)
    log.write_bytes(b"a\n\nbb\r\nccc\n")
    t.poll_once()
    write(log, b"dddd\neeeee\nf")
    t.poll_once()
    assert [(n, off) for _, n, off, _ in rec.lines] == [(1, 0), (2, 2), (3, 3), (4, 7), (5, 11), (6, 16)]
    content = log.read_bytes()
    for _, _, off, line in rec.lines:
        assert content[off : off + len(line) + 1] == line + b"\n"


# ----------------------------------------------------------------------------- partial lines never delivered


def test_unterminated_line_discarded_on_truncation(make, rec, log):
    t = make(log)
    log.write_bytes(b"a\npartial")
    t.poll_once()
    os.truncate(log, 0)
    write(log, b"b\n")
    t.poll_once()
    assert rec.texts() == [b"a", b"b"]
    assert ("incomplete", str(log), 7) in rec.calls
    assert rec.lines[-1] == (str(log), 1, 0, b"b")


def test_unterminated_line_discarded_on_deletion(make, rec, log):
    t = make(log)
    log.write_bytes(b"a\npart")
    t.poll_once()
    os.unlink(log)
    t.poll_once()
    assert rec.texts() == [b"a"]
    assert rec.of("incomplete") == [("incomplete", str(log), 4)]
    assert t.files == []


def test_unterminated_line_never_delivered_on_close(make, rec, log):
    t = make(log)
    log.write_bytes(b"a\npart")
    t.poll_once()
    t.close()
    t.poll_once()
    assert rec.texts() == [b"a"]
    assert rec.of("incomplete") == []
    assert t.files == []


# ----------------------------------------------------------------------------- rotation


def test_rename_create_with_writes_to_old_fd_after_rename(make, rec, log):
    t = make(log)
    with open(log, "ab", buffering=0) as writer:
        writer.write(b"old1\n")
        t.poll_once()
        os.rename(log, f"{log}.1")
        writer.write(b"old2\nold-partial")  # the writer has not reopened yet
        write(log, b"new1\n")
        t.poll_once()
    assert rec.lines == [(str(log), 1, 0, b"old1"), (str(log), 2, 5, b"old2"), (str(log), 1, 0, b"new1")]
    kinds = [c[0] for c in rec.calls if c[0] != "read"]
    assert kinds == ["lines", "lines", "incomplete", "rotation", "lines"]
    assert t.files == [str(log)]


def test_writes_racing_the_rotation_check_are_not_lost(make, rec, log):
    """Writer appends after our EOF read and rotates before our stat: the old fd is drained once more."""
    t = make(log)
    writer = open(log, "ab", buffering=0)  # noqa: SIM115 - stays open across the injected race
    writer.write(b"a\n")
    t.poll_once()
    discover = t._discovery.find

    def racing_discover() -> dict:
        writer.write(b"late\n")
        os.rename(log, f"{log}.1")
        log.write_bytes(b"new\n")
        return discover()

    t._discovery.find = racing_discover  # type: ignore[method-assign]
    try:
        t.poll_once()
    finally:
        writer.close()
    assert rec.texts() == [b"a", b"late", b"new"]


def test_rename_create_new_file_already_has_content(make, rec, log):
    t = make(log)
    log.write_bytes(b"o1\no2\n")
    t.poll_once()
    os.rename(log, f"{log}.1")
    log.write_bytes(b"n1\nn2\nn3\n")
    t.poll_once()
    t.poll_once()
    assert rec.texts() == [b"o1", b"o2", b"n1", b"n2", b"n3"]
    assert [n for _, n, _, _ in rec.lines][2:] == [1, 2, 3]
    assert rec.of("rotation") == [("rotation", str(log))]


def test_renamed_away_file_kept_until_path_reappears(make, rec, log):
    t = make(log)
    with open(log, "ab", buffering=0) as writer:
        writer.write(b"a\n")
        t.poll_once()
        os.rename(log, log.with_suffix(".old"))
        t.poll_once()
        writer.write(b"b\n")  # noticed the rename already, still following the fd
        t.poll_once()
    assert rec.texts() == [b"a", b"b"]
    assert rec.of("rotation") == []
    write(log, b"c\n")
    t.poll_once()
    assert rec.texts() == [b"a", b"b", b"c"]
    assert rec.of("rotation") == [("rotation", str(log))]


def test_rotated_file_matching_glob_not_read_twice(make, rec, tmp_path, log):
    t = make(f"{log}*")
    rotated = f"{log}.1"
    with open(log, "ab", buffering=0) as writer:
        writer.write(b"a1\na2\npart")
        t.poll_once()
        os.rename(log, rotated)
        writer.write(b"ial\na3\n")  # completes the held partial line in the renamed file
        write(log, b"b1\n")
        t.poll_once()
        t.poll_once()
        writer.write(b"a4\n")
        t.poll_once()
    assert sorted(rec.texts()) == [b"a1", b"a2", b"a3", b"a4", b"b1", b"partial"]
    assert {line: n for _, n, _, line in rec.lines} == {b"a1": 1, b"a2": 2, b"partial": 3, b"a3": 4, b"a4": 5, b"b1": 1}
    assert rec.lines[-1][0] == rotated  # followed under its new name after the rename
    assert rec.of("incomplete") == []
    assert rec.of("rotation") == [("rotation", str(log))]
    assert sorted(t.files) == [str(log), rotated]


def test_rotation_chain_seen_half_done_is_not_read_twice(make, rec, log):
    """A writer's rotation chain (``.1`` → ``.2``, then the log → ``.1``) can run while a poll lists the
    names and stats them one by one: that poll sees the new ``.1`` under two names and never sees where
    the old ``.1`` went. The old file must not be dropped and read again from byte 0 when the next poll
    finds it as ``.2`` (seen as a double count with several rotating writers)."""
    t = make(f"{log}*")
    one, two = Path(f"{log}.1"), Path(f"{log}.2")
    write(log, b"a1\n")
    os.rename(log, one)
    write(log, b"b1\n")
    t.poll_once()
    assert sorted(rec.texts()) == [b"a1", b"b1"]
    os.rename(one, two)
    os.rename(log, one)
    write(log, b"c1\n")
    b = os.stat(one)
    real_find = t._discovery.find
    t._discovery.find = lambda: {str(log): (b.st_dev, b.st_ino), str(one): (b.st_dev, b.st_ino)}  # type: ignore
    t.poll_once()  # names listed before the chain, stat-ed after it
    t._discovery.find = real_find  # type: ignore[method-assign]
    write(two, b"a2\n")  # a writer that still had the old file open
    t.poll_once()
    t.poll_once()
    assert sorted(rec.texts()) == [b"a1", b"a2", b"b1", b"c1"]
    assert sorted(t.files) == [str(log), str(one), str(two)]


def test_a_file_missed_by_two_listings_during_a_rotation_chain_is_not_read_twice(make, rec, log, monkeypatch):
    """Polls a few ms apart (scrapes catching up, a 5 ms waker) can both list the directory while a long
    chain (``.59`` → ``.60`` … ``.1`` → ``.2``) runs: a file missed twice, still linked, is still the file
    followed when a later listing finds it (seen as one file of 31 lines counted twice by 4 rotating writers)."""
    t = make(f"{log}*")
    aside, two = log.with_name("in-the-chain"), Path(f"{log}.2")
    write(log, b"a1\n")
    t.poll_once()
    os.rename(log, aside)  # renamed to where no listing sees it (the chain's name of a moment)
    write(log, b"b1\n")
    t.poll_once()
    t.poll_once()  # missed again by the next listing
    write(aside, b"a2\n")  # a writer that still had it open
    os.rename(aside, two)
    t.poll_once()
    t.poll_once()
    assert sorted(rec.texts()) == [b"a1", b"a2", b"b1"]
    assert sorted(t.files) == [str(log), str(two)]
    monkeypatch.setattr(tailer_mod, "UNSEEN_GRACE", 0.0)  # past the grace, a file renamed out of sight is done
    os.rename(two, aside)
    write(two, b"c1\n")  # another file at its name
    t.poll_once()
    write(aside, b"a3\n")
    t.poll_once()
    assert len(t._unseen) == 0 and sorted(t.files) == [str(log), str(two)]
    assert sorted(rec.texts()) == [b"a1", b"a2", b"a3", b"b1", b"c1"]  # finished before it was let go


def test_symlink_followed_and_retarget_is_rotation(make, rec, tmp_path):
    a, b, link = tmp_path / "a.data", tmp_path / "b.data", tmp_path / "current.jsonl"
    a.write_bytes(b"a1\n")
    b.write_bytes(b"b1\n")
    link.symlink_to(a)
    t = make(link)
    t.poll_once()
    write(a, b"a2\n")
    t.poll_once()
    tmp_link = tmp_path / "tmp.link"
    tmp_link.symlink_to(b)
    os.replace(tmp_link, link)  # what `ln -sfn` does
    write(a, b"a3\n")  # written before we notice: still ours
    t.poll_once()
    assert rec.lines == [
        (str(link), 1, 0, b"a1"),
        (str(link), 2, 3, b"a2"),
        (str(link), 3, 6, b"a3"),
        (str(link), 1, 0, b"b1"),
    ]
    assert rec.of("rotation") == [("rotation", str(link))]


# ----------------------------------------------------------------------------- truncation


def test_copytruncate_with_append_writer(make, rec, log):
    t = make(log)
    with open(log, "ab", buffering=0) as writer:  # O_APPEND, as logrotate's copytruncate requires
        writer.write(b"line-one\nline-two\n")
        t.poll_once()
        shutil.copy(log, f"{log}.1")
        os.truncate(log, 0)
        writer.write(b"n1\n")
        t.poll_once()
    assert rec.texts() == [b"line-one", b"line-two", b"n1"]
    assert rec.lines[-1] == (str(log), 1, 0, b"n1")
    assert rec.of("truncation") == [("truncation", str(log))]
    assert rec.of("rotation") == []


def test_truncate_in_place(make, rec, log):
    t = make(log)
    log.write_bytes(b"aaaa\nbbbb\n")
    t.poll_once()
    os.truncate(log, 0)
    t.poll_once()
    assert rec.of("truncation") == [("truncation", str(log))]
    write(log, b"c\n")
    t.poll_once()
    assert rec.texts() == [b"aaaa", b"bbbb", b"c"]
    assert rec.lines[-1] == (str(log), 1, 0, b"c")
    assert len(rec.of("truncation")) == 1


def test_truncate_then_regrow_past_offset_before_next_poll(make, rec, log):
    t = make(log)
    log.write_bytes(b"old\n" * 10)
    t.poll_once()
    os.truncate(log, 0)
    write(log, b"new-line\n" * 10)  # 90 bytes > old offset 40: size alone cannot tell
    t.poll_once()
    assert rec.texts() == [b"old"] * 10 + [b"new-line"] * 10
    assert rec.of("truncation") == [("truncation", str(log))]
    assert [n for _, n, _, _ in rec.lines][10:] == list(range(1, 11))


# ----------------------------------------------------------------------------- deletion and appearance


def test_delete_without_recreate(make, rec, log):
    t = make(log)
    log.write_bytes(b"a\n")
    t.poll_once()
    os.unlink(log)
    t.poll_once()
    t.poll_once()
    assert rec.texts() == [b"a"]
    assert t.files == []
    assert t.lag_bytes() == {}
    assert rec.of("rotation") == []


def test_delete_then_recreate(make, rec, log):
    t = make(log)
    log.write_bytes(b"a\nb\n")
    t.poll_once()
    os.unlink(log)
    t.poll_once()
    log.write_bytes(b"c\n")
    t.poll_once()
    assert rec.texts() == [b"a", b"b", b"c"]
    assert rec.lines[-1] == (str(log), 1, 0, b"c")
    assert rec.of("rotation") == [("rotation", str(log))]


def test_delete_and_recreate_between_polls(make, rec, log):
    t = make(log)
    log.write_bytes(b"a\nb\n")
    t.poll_once()
    os.unlink(log)
    log.write_bytes(b"c\n")  # same length: offset/size alone would not show it
    t.poll_once()
    assert rec.texts() == [b"a", b"b", b"c"]
    assert rec.of("rotation") == [("rotation", str(log))]


def test_file_absent_at_start_then_created(make, rec, log):
    t = make(log, from_end=True)  # from_end only applies to files present at the first poll
    t.poll_once()
    assert t.files == []
    log.write_bytes(b"first\nsecond\n")
    t.poll_once()
    assert rec.texts() == [b"first", b"second"]
    assert t.files == [str(log)]


def test_unreadable_then_readable(make, rec, log, monkeypatch):
    log.write_bytes(b"a\n")
    real_open = os.open
    denials = {"left": 2}

    def deny(path, flags, *args, **kw):
        if os.fspath(path) == str(log) and denials["left"]:
            denials["left"] -= 1
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(tailer_mod.os, "open", deny)
    t = make(log)
    t.poll_once()
    t.poll_once()
    errors = rec.of("open_error")
    assert len(errors) == 1  # reported once, not once per poll
    assert isinstance(errors[0][2], PermissionError)
    assert t.files == []
    t.poll_once()
    assert rec.texts() == [b"a"]
    assert t.files == [str(log)]


# ----------------------------------------------------------------------------- globs


def test_glob_several_files_and_new_ones(make, rec, tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b"a\n")
    (tmp_path / "b.jsonl").write_bytes(b"b\n")
    (tmp_path / "other.txt").write_bytes(b"no\n")
    t = make(tmp_path / "*.jsonl")
    t.poll_once()
    (tmp_path / "c.jsonl").write_bytes(b"c\n")
    write(tmp_path / "a.jsonl", b"a2\n")
    t.poll_once()
    assert sorted(rec.texts()) == [b"a", b"a2", b"b", b"c"]
    assert sorted(t.files) == [str(tmp_path / n) for n in ("a.jsonl", "b.jsonl", "c.jsonl")]


def test_exclude_glob(make, rec, tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b"a\n")
    (tmp_path / "a.jsonl.gz").write_bytes(b"\x1f\x8b\n")
    t = make(tmp_path / "a.jsonl*", exclude=["*.gz"])
    t.poll_once()
    assert rec.texts() == [b"a"]
    assert t.files == [str(tmp_path / "a.jsonl")]


def test_directory_and_fifo_matching_glob_ignored(make, rec, tmp_path):
    (tmp_path / "dir.jsonl").mkdir()
    os.mkfifo(tmp_path / "fifo.jsonl")  # opening it would block without a writer
    (tmp_path / "f.jsonl").write_bytes(b"f\n")
    t = make(tmp_path / "*.jsonl")
    t.poll_once()
    assert rec.texts() == [b"f"]
    assert t.files == [str(tmp_path / "f.jsonl")]
    assert rec.of("open_error") == []


# ----------------------------------------------------------------------------- oversized lines and memory


@pytest.mark.parametrize("read_chunk", [1 << 20, 16, 3])
def test_oversized_line_between_good_lines(make, rec, log, read_chunk):
    log.write_bytes(b"ok1\n" + b"x" * 50 + b"\nok2\n" + b"y" * 11 + b"\nok3\n")
    make(log, max_line_bytes=10, read_chunk=read_chunk).poll_once()
    assert [(n, off, line) for _, n, off, line in rec.lines] == [(1, 0, b"ok1"), (3, 55, b"ok2"), (5, 71, b"ok3")]
    assert rec.of("oversized") == [("oversized", str(log), 2, 4), ("oversized", str(log), 4, 59)]


def test_line_of_exactly_max_bytes_kept(make, rec, log):
    log.write_bytes(b"x" * 10 + b"\n" + b"y" * 11 + b"\n")
    make(log, max_line_bytes=10, read_chunk=4).poll_once()
    assert rec.texts() == [b"x" * 10]
    assert rec.of("oversized") == [("oversized", str(log), 2, 11)]


def test_20mb_file_without_newline_keeps_buffer_bounded(make, rec, log):
    max_line, chunk = 64 << 10, 256 << 10
    size = 20 << 20
    with open(log, "wb") as f:
        f.write(b"z" * size)
    t = make(log, max_line_bytes=max_line, read_chunk=chunk)
    held: list[int] = []
    on_read = rec.on_read

    def spy(path: str, nbytes: int) -> None:
        on_read(path, nbytes)
        held.extend(len(st.lines.tail) for st in t._streams.values())

    rec.on_read = spy  # type: ignore[method-assign]
    t.poll_once()
    held.extend(len(st.lines.tail) for st in t._streams.values())
    assert len(held) > 50
    assert max(held) <= max_line
    assert rec.of("oversized") == [("oversized", str(log), 1, 0)]
    write(log, b"\nok\n")
    t.poll_once()
    assert rec.lines == [(str(log), 2, size + 1, b"ok")]


# ----------------------------------------------------------------------------- start position, lag


def test_from_end_skips_history(make, rec, log):
    log.write_bytes(b"old1\nold2\n")
    t = make(log, from_end=True)
    t.poll_once()
    assert rec.lines == []
    write(log, b"new\n")
    t.poll_once()
    assert rec.lines == [(str(log), 1, 10, b"new")]


def test_from_end_mid_line_skips_the_fragment(make, rec, log):
    log.write_bytes(b"old\nhalf-writ")
    t = make(log, from_end=True)
    t.poll_once()
    write(log, b"ten\nnew\n")
    t.poll_once()
    assert rec.texts() == [b"new"]
    assert rec.lines == [(str(log), 1, 17, b"new")]


def test_lag_bytes(make, rec, log):
    log.write_bytes(b"a\n")
    t = make(log)
    assert t.lag_bytes() == {}
    t.poll_once()
    assert t.lag_bytes() == {str(log): 0}
    write(log, b"0123456789")
    assert t.lag_bytes() == {str(log): 10}


# ----------------------------------------------------------------------------- run() and wake-ups


def test_start_watching_schedules_parent_dirs_with_narrow_filter(make, rec, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "target.data").write_bytes(b"")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "usage.jsonl").symlink_to(other / "target.data")
    off = make(logs / "usage.jsonl", use_inotify=False)
    off.start_watching()
    assert not off._watches.active and off._watches._watches == {}
    t = make(logs / "usage.jsonl", use_inotify=True)
    t.start_watching()
    assert list(t._watches._watches) == [os.path.realpath(logs)]  # before any poll
    t.poll_once()  # the symlink target's directory is watched too
    assert sorted(t._watches._watches) == sorted([os.path.realpath(logs), os.path.realpath(other)])
    for d, (_, watch) in t._watches._watches.items():
        # the wake-only inotify watcher (watchdog only where it is unavailable): narrow mask, no open/close
        assert isinstance(watch, WakeWatch) and watch.path == d
    assert inotify_mod.MASK & (0x001 | 0x008 | 0x010 | 0x020) == 0  # IN_ACCESS, IN_CLOSE_*, IN_OPEN
    assert inotify_mod.MASK & inotify_mod.IN_MODIFY and inotify_mod.MASK & inotify_mod.IN_MOVED_TO


def run_in_thread(t: Tailer) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    th = threading.Thread(target=t.run, args=(stop,), daemon=True)
    th.start()
    return stop, th


def wait_for(cond: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


def test_run_with_inotify_delivers_without_timer(make, rec, log):
    log.write_bytes(b"")
    t = make(log, use_inotify=True, poll_interval=30)
    t.start_watching()
    stop, th = run_in_thread(t)
    try:
        assert wait_for(lambda: t.files == [str(log)])
        time.sleep(0.05)  # let run() settle into its 30 s wait
        write(log, b'{"live":1}\n')
        assert rec.got_lines.wait(2.0), "only an inotify wake-up can deliver this within 2 s"
        assert rec.texts() == [b'{"live":1}']
    finally:
        stop.set()
        th.join(2.0)


def test_watch_scheduled_for_directory_created_later(make, rec, tmp_path):
    log = tmp_path / "later" / "usage.jsonl"
    t = make(log, use_inotify=True, poll_interval=30)
    t.start_watching()
    t.poll_once()
    log.parent.mkdir()
    t.poll_once()  # a timer poll notices the directory and schedules it
    stop, th = run_in_thread(t)
    try:
        time.sleep(0.05)
        write(log, b"x\n")
        assert rec.got_lines.wait(2.0)
        assert rec.texts() == [b"x"]
    finally:
        stop.set()
        th.join(2.0)


def test_wake_triggers_poll(make, rec, log):
    log.write_bytes(b"")
    t = make(log, poll_interval=30)
    stop, th = run_in_thread(t)
    try:
        assert wait_for(lambda: t.files == [str(log)])
        write(log, b"w\n")
        t.wake()
        assert rec.got_lines.wait(2.0)
    finally:
        stop.set()
        th.join(2.0)


def test_wake_bursts_of_a_busy_file_are_coalesced(make, rec, log):
    log.write_bytes(b"")
    t = make(log, poll_interval=30)
    t.min_wake_interval = 0.05
    t.busy_bytes = 1  # every poll that read something counts as busy
    polls = []
    poll_once = t.poll_once
    t.poll_once = lambda: (polls.append(time.monotonic()), poll_once())  # type: ignore[method-assign]
    stop, th = run_in_thread(t)
    try:
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:  # one wake per appended line, as inotify would send
            write(log, b"x\n")
            t.wake()
            time.sleep(0.001)
        assert wait_for(lambda: len(rec.lines) == log.read_bytes().count(b"\n"))
    finally:
        stop.set()
        th.join(2.0)
    assert 2 <= len(polls) <= 12
    # the first poll read an empty file (not busy): the next may follow at once; every later poll read
    # the lines written meanwhile, so each waits min_wake_interval before the next
    assert all(b - a >= 0.045 for a, b in itertools.pairwise(polls[1:]))


def test_wakes_of_a_quiet_file_are_not_delayed(make, rec, log):
    """Below ``busy_bytes`` per poll, a wake polls at once: a line is read well before ``min_wake_interval``."""
    log.write_bytes(b"")
    t = make(log, poll_interval=30)
    t.min_wake_interval = 5.0  # a coalescing wait would be plain to see
    stop, th = run_in_thread(t)
    try:
        for i in range(1, 6):
            write(log, b"x\n")
            t.wake()
            started = time.monotonic()
            assert wait_for(lambda i=i: len(rec.lines) == i, timeout=4.0)
            assert time.monotonic() - started < 4.0
    finally:
        stop.set()
        th.join(2.0)


def test_run_returns_promptly_when_stop_set(make, log):
    t = make(log, poll_interval=30)
    stop, th = run_in_thread(t)
    time.sleep(0.1)
    started = time.monotonic()
    stop.set()
    th.join(2.0)
    assert not th.is_alive()
    assert time.monotonic() - started < 1.0


def test_run_stop_finishes_current_read_only(make, rec, log):
    log.write_bytes(b"line\n" * 10_000 + b"partial")
    t = make(log, read_chunk=1000, poll_interval=30)
    stop = threading.Event()
    on_read = rec.on_read

    def stop_after_first_read(path: str, nbytes: int) -> None:
        on_read(path, nbytes)
        stop.set()

    rec.on_read = stop_after_first_read  # type: ignore[method-assign]
    th = threading.Thread(target=t.run, args=(stop,), daemon=True)
    th.start()
    th.join(2.0)
    assert not th.is_alive()
    assert rec.of("read") == [("read", str(log), 1000)]
    assert rec.texts() == [b"line"] * 200
    assert b"partial" not in rec.texts()


def test_run_survives_sink_error(make, rec, log):
    log.write_bytes(b"")
    t = make(log, poll_interval=30)
    on_lines = rec.on_lines
    failures = {"left": 1}

    def flaky(*args: object) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("consumer bug")
        on_lines(*args)  # type: ignore[arg-type]

    rec.on_lines = flaky  # type: ignore[method-assign]
    stop, th = run_in_thread(t)
    try:
        assert wait_for(lambda: t.files == [str(log)])
        write(log, b"lost\n")
        t.wake()
        assert wait_for(lambda: failures["left"] == 0)
        write(log, b"kept\n")
        t.wake()
        assert rec.got_lines.wait(2.0)
        assert rec.texts() == [b"kept"]  # the failed batch is not re-delivered
    finally:
        stop.set()
        th.join(2.0)
    assert not th.is_alive()


# ----------------------------------------------------------------------------- model-based


class _Writer:
    """An O_APPEND writer that emits a stream of unique lines in arbitrary pieces; the model of record."""

    def __init__(self, path: Path, max_line: int) -> None:
        self.path, self.max_line = path, max_line
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.next_id = 0
        self.pending = b""  # unwritten rest of the current line, newline included
        self.current = b""
        self.expected: list[bytes] = []

    def write(self, n: int, width: int) -> None:
        while n > 0:
            if not self.pending:
                pad = "é" * (width % 7) + "x" * (width * (self.next_id % 5))
                self.current = f"L{self.next_id}:{pad}".encode()
                self.pending = self.current + b"\n"
                self.next_id += 1
            piece, self.pending = self.pending[:n], self.pending[n:]
            os.write(self.fd, piece)
            n -= len(piece)
            if not self.pending and len(self.current) <= self.max_line:
                self.expected.append(self.current)

    def reopen(self) -> None:
        """The writer starts a new file; a half-written line is abandoned (never completed)."""
        self.pending = b""
        os.close(self.fd)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


_OPS = st.one_of(
    st.tuples(st.just("write"), st.integers(1, 150), st.integers(0, 20)),
    st.tuples(st.just("poll"), st.just(0), st.just(0)),
    st.tuples(st.just("rotate"), st.integers(0, 40), st.integers(0, 20)),
    st.tuples(st.just("truncate"), st.just(0), st.just(0)),
    st.tuples(st.just("delete"), st.just(0), st.just(0)),
)


@pytest.mark.parametrize("follow_rotated", [False, True])
@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_OPS, max_size=40), read_chunk=st.sampled_from([5, 64, 4096]))
def test_model_every_complete_line_exactly_once(follow_rotated, ops, read_chunk):
    """Random writes, polls, rotations, truncations and deletions: delivered == completed lines.

    Exact by construction: truncation polls first (writes between the last read and a truncation are
    unknowable to any tailer) and a file is seen by one poll before it is rotated or deleted away.
    """
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "usage.jsonl"
        writer = _Writer(path, max_line=64)
        rec = Rec()
        t = Tailer(
            [f"{path}*" if follow_rotated else str(path)],
            rec,
            read_chunk=read_chunk,
            max_line_bytes=64,
            use_inotify=False,
        )
        seen, rotations = False, 0
        try:
            for op, n, width in ops:
                if op == "write":
                    writer.write(n, width)
                    continue
                if op in ("poll", "truncate") or not seen:
                    t.poll_once()
                    seen = True
                if op == "rotate":
                    rotations += 1
                    os.rename(path, f"{path}.{rotations}")
                    writer.write(n, width)  # still appending to the renamed file
                    writer.reopen()
                    seen = False
                elif op == "truncate":
                    os.truncate(path, 0)
                    writer.pending = b""
                elif op == "delete":
                    os.unlink(path)
                    writer.reopen()
                    seen = False
            t.poll_once()
            got = rec.texts()
            if follow_rotated:
                got, want = sorted(got), sorted(writer.expected)
            else:
                want = writer.expected
            assert got == want
        finally:
            t.close()
            os.close(writer.fd)


# ----------------------------------------------------------------------------- scrapes catching up


def test_catch_up_reads_what_was_written_before_it_without_waiting_for_the_timer(make, rec, log):
    write(log, b"first\n")
    t = make(log, poll_interval=3600)  # no inotify, a timer that never fires during the test
    assert t.catch_up(0.5) is False  # not polling yet: nothing to wait for
    stop = threading.Event()
    runner = threading.Thread(target=t.run, args=(stop,))
    runner.start()
    try:
        assert rec.got_lines.wait(5)
        write(log, b"second\n")
        assert t.catch_up(5) is True
        assert rec.texts() == [b"first", b"second"]  # read by the poll catch_up waited for
        write(log, b"third\n")
        assert t.catch_up(5) is True and rec.texts()[-1] == b"third"
    finally:
        stop.set()
        runner.join(5)
    assert t.catch_up(0.5) is False  # stopped: returns at once


def test_catch_up_cuts_a_busy_files_pause_short(make, rec, log):
    t = make(log, poll_interval=3600)
    t.min_wake_interval = 3600  # after a busy poll the next would wait an hour
    stop = threading.Event()
    runner = threading.Thread(target=t.run, args=(stop,))
    runner.start()
    try:
        write(log, (b"x" * 99 + b"\n") * (t.busy_bytes // 100 + 1))  # a busy poll: the pause follows
        t.wake()
        assert rec.got_lines.wait(5)
        write(log, b"after the burst\n")
        started = time.monotonic()
        assert t.catch_up(5) is True
        assert rec.texts()[-1] == b"after the burst" and time.monotonic() - started < 5
        assert len(rec.texts()) == t.busy_bytes // 100 + 2
    finally:
        stop.set()
        runner.join(5)
