"""History inputs: paths, directories, globs, stdin, gzip, and line batches with exact positions."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from llm_log_exporter.history import sources as inputs
from llm_log_exporter.history.sources import InputError, Reader, Source, expand


def lines_of(reader: Reader) -> list[tuple[int, int, bytes]]:
    """(line number, byte offset, line) of every delivered line, from the batches' positions."""
    out = []
    for batch, lineno, offset in reader.batches():
        for line in batch:
            out.append((lineno, offset, line))
            lineno += 1
            offset += len(line) + 1
    return out


def source(path: Path) -> Source:
    return Source(str(path), path.stat().st_size)


def test_expand_files_directories_globs_once_each(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / ".hidden").mkdir()
    for name in ("d/b.jsonl", "d/a.jsonl.gz", "d/sub/c.ndjson", "d/.hidden/x.jsonl", "d/.dot.jsonl", "e.jsonl"):
        (tmp_path / name).write_text("")
    found = expand([str(tmp_path / "d"), str(tmp_path / "*.jsonl"), str(tmp_path / "d" / "b.jsonl"), "-"])
    names = [os.path.relpath(s.path, tmp_path) if s.path != "-" else "-" for s in found]
    assert names == ["d/a.jsonl.gz", "d/b.jsonl", "d/sub/c.ndjson", "e.jsonl", "-"]
    assert found[-1].size is None and found[0].size == 0
    with pytest.raises(InputError, match="no such file"):
        expand([str(tmp_path / "missing.jsonl")])
    with pytest.raises(InputError, match="no file matches"):
        expand([str(tmp_path / "*.csv")])
    with pytest.raises(InputError, match="only once"):
        expand(["-", "-"])


def test_lines_positions_crlf_and_unterminated_last_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "CHUNK", 7)  # lines straddle many chunk boundaries
    path = tmp_path / "u.jsonl"
    path.write_bytes(b'{"a":1}\r\n\n{"bb":22}\n{"last":3}')
    got = lines_of(Reader(source(path)))
    assert got == [(1, 0, b'{"a":1}\r'), (2, 9, b""), (3, 10, b'{"bb":22}'), (4, 20, b'{"last":3}')]


def test_oversized_lines_are_skipped_and_later_positions_stay_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "u.jsonl"
    long = b"x" * 100
    path.write_bytes(b"ok1\n" + long + b"\nok2\n" + long + long + b"\nok3\n" + long)
    for chunk in (5, 64, 1 << 20):
        monkeypatch.setattr(inputs, "CHUNK", chunk)
        reader = Reader(source(path), max_line_bytes=64)
        got = lines_of(reader)
        assert got == [(1, 0, b"ok1"), (3, 105, b"ok2"), (5, 310, b"ok3")], chunk
        assert [lineno for lineno, _ in reader.oversized] == [2, 4, 6], chunk
        assert [offset for _, offset in reader.oversized] == [4, 109, 314], chunk


def test_gzip_by_content_not_name_and_progress_in_compressed_bytes(tmp_path: Path) -> None:
    data = b"".join(b'{"n":%d}\n' % i for i in range(5000))
    path = tmp_path / "rotated.1"  # no .gz suffix: logrotate's compress keeps names like this too
    path.write_bytes(gzip.compress(data))
    reader = Reader(source(path))
    assert [line for _, _, line in lines_of(reader)] == data.split(b"\n")[:-1]
    assert reader.consumed == path.stat().st_size and reader.error is None


def test_truncated_gzip_keeps_what_was_read_and_reports(tmp_path: Path) -> None:
    data = b"".join(b'{"n":%d,"pad":"%s"}\n' % (i, os.urandom(20).hex().encode()) for i in range(20000))
    path = tmp_path / "cut.jsonl.gz"
    packed = gzip.compress(data)
    path.write_bytes(packed[: len(packed) // 2])
    reader = Reader(source(path))
    got = [line for _, _, line in lines_of(reader)]
    assert 0 < len(got) < 20000
    assert got == data.split(b"\n")[: len(got)]  # whole lines only, in order
    assert reader.error and "EOFError" in reader.error


def test_a_file_that_cannot_be_read_stops_the_command(tmp_path: Path) -> None:
    """A partial history must not pass for a complete one: a file gone between listing and reading
    (or unreadable) raises, it is not skipped."""
    path = tmp_path / "gone.jsonl"
    path.write_text("{}\n")
    src = source(path)
    path.unlink()
    with pytest.raises(InputError, match=r"gone\.jsonl: cannot read: No such file"):
        lines_of(Reader(src))
