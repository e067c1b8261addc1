"""Restart with --state-file, through the real pipeline in-process: every complete line counted once.

Each test writes lines whose ``model`` label names the line, so ``counted()`` shows exactly which lines
were counted and how often.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import orjson
import pytest

from llm_log_exporter.aggregate.store import FILE_SLOTS
from tests.pipeline import Pipeline, append, inode, line, lines, once


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state.json"


def test_restart_resumes_at_offset_and_restores_metrics(log, state):
    append(log, lines("a", 3))
    p = Pipeline(log, state=state).tick()
    append(log, lines("b", 2))  # written while the exporter is down
    p.stop()
    append(log, lines("c", 2))
    p.start().tick()
    assert p.counted() == once("a", 3) + once("b", 2) + once("c", 2)
    assert p.total("llm_exporter_lines_total", result="parsed") == 7  # self-metrics continue too
    assert p.total("llm_exporter_read_bytes_total") == log.stat().st_size
    assert p.total("llm_exporter_state_load_info", result="restored") == 1


def test_without_state_file_restart_is_a_pure_function_of_the_file(log):
    append(log, lines("a", 3))
    p = Pipeline(log).tick()
    p.restart().tick()
    assert p.counted() == once("a", 3)


def test_crash_resumes_from_last_save_exactly(log, state):
    append(log, lines("a", 3))
    p = Pipeline(log, state=state).tick().save()
    append(log, lines("b", 4))
    p.tick()  # counted in memory, not saved: lost with the process, read again after the restart
    assert p.counted() == once("a", 3) + once("b", 4)
    p.restart(clean=False).tick()
    assert p.counted() == once("a", 3) + once("b", 4)


def test_held_partial_line_at_shutdown_is_read_whole_after_restart(log, state):
    whole = line("half")
    append(log, lines("a", 2) + whole[:17])
    p = Pipeline(log, state=state).tick()
    p.stop()
    saved = json.loads(state.read_text())["files"][0]
    assert saved["offset"] == len(lines("a", 2)) and saved["held"] == 17
    append(log, whole[17:])
    p.start().tick()
    assert p.counted() == once("a", 2) + Counter(half=1)
    assert p.total("llm_exporter_lines_total", result="invalid") == 0
    assert p.total("llm_exporter_read_bytes_total") == log.stat().st_size


def test_oversized_line_in_progress_survives_restart(log, state):
    append(log, line("ok1") + b'{"v":1,"pad":"' + b"x" * 300)
    p = Pipeline(log, state=state, max_line_bytes=200).tick()
    p.stop()
    append(log, b"y" * 100 + b'"}\n' + line("ok2"))
    p.start().tick()
    assert p.counted() == once("ok", 2, start=1)
    assert p.total("llm_exporter_invalid_lines_total", reason="oversized") == 1


def test_rename_rotation_while_down_finishes_old_file_then_reads_new(log, state):
    append(log, lines("a", 2))
    p = Pipeline(log, state=state).tick()
    p.stop()
    append(log, lines("b", 2))  # after the last save, before the rotation
    os.rename(log, f"{log}.1")
    append(log, lines("c", 2))
    p.start().tick()
    assert p.counted() == once("a", 2) + once("b", 2) + once("c", 2)
    assert p.total("llm_exporter_rotations_total") == 1
    p.tick()
    assert p.exp.tailer.files == [str(log)]


def test_rename_rotation_while_down_with_glob_matching_rotated_name(log, state):
    append(log, lines("a", 2))
    p = Pipeline(f"{log}*", state=state).tick().save()
    p.crash()
    append(log, lines("b", 2))
    os.rename(log, f"{log}.1")
    append(log, lines("c", 2))
    p.start().tick()
    assert p.counted() == once("a", 2) + once("b", 2) + once("c", 2)
    append(f"{log}.1", lines("d", 1))  # the old writer still appends: followed under the new name
    p.tick()
    assert p.counted()["d0"] == 1
    assert sorted(p.exp.tailer.files) == [str(log), f"{log}.1"]


def test_two_rotations_while_down_glob_reads_the_middle_file_from_start(log, state):
    append(log, lines("a", 2))
    p = Pipeline(f"{log}*", state=state).tick()
    p.stop()
    append(log, lines("b", 1))
    os.rename(log, f"{log}.1")
    append(log, lines("c", 2))
    os.rename(f"{log}.1", f"{log}.2")
    os.rename(log, f"{log}.1")
    append(log, lines("d", 1))
    p.start().tick()
    assert p.counted() == once("a", 2) + once("b", 1) + once("c", 2) + once("d", 1)


def test_copytruncate_while_down_finishes_the_copy(log, state):
    append(log, lines("a", 2))
    p = Pipeline(log, state=state).tick().save()
    p.crash()
    append(log, lines("b", 2))
    shutil.copy(log, f"{log}.1")  # logrotate copytruncate
    os.truncate(log, 0)
    append(log, lines("c", 1))
    p.start().tick()
    assert p.counted() == once("a", 2) + once("b", 2) + once("c", 1)


def test_truncate_while_down_reads_from_start_and_never_double_counts(log, state):
    """No copy left: what was written after the last save and before the truncation is gone (the bound)."""
    append(log, lines("a", 2))
    p = Pipeline(log, state=state).tick()
    p.stop()
    append(log, lines("lost", 1))
    os.truncate(log, 0)
    append(log, lines("c", 3))  # longer than the old offset: size alone would not tell
    p.start().tick()
    assert p.counted() == once("a", 2) + once("c", 3)


def test_inode_reuse_after_delete_and_create_while_down(log, state):
    append(log, lines("a", 3))
    p = Pipeline(log, state=state).tick()
    p.stop()
    os.unlink(log)
    append(log, lines("b", 4))
    # Make the reuse certain rather than likely: point the saved position at the new file's inode.
    doc = orjson.loads(state.read_bytes())
    doc["files"][0]["ino"] = inode(log)
    state.write_bytes(orjson.dumps(doc))
    p.start().tick()
    assert p.counted() == once("a", 3) + once("b", 4)


def test_delete_without_recreate_while_down(log, state):
    append(log, lines("a", 2))
    p = Pipeline(log, state=state).tick()
    p.stop()
    os.unlink(log)
    p.start().tick()
    assert p.counted() == once("a", 2)
    assert p.exp.tailer.files == []
    append(log, lines("b", 1))
    p.tick()
    assert p.counted() == once("a", 2) + once("b", 1)


def test_symlink_retargeted_while_down(tmp_path, state):
    """kubelet style: the followed path is a symlink; the runtime renames 0.log and creates a new one."""
    pod = tmp_path / "pods" / "0.log"
    pod.parent.mkdir()
    link = tmp_path / "usage.jsonl"
    link.symlink_to(pod)
    append(pod, lines("a", 2))
    p = Pipeline(link, state=state).tick()
    p.stop()
    append(pod, lines("b", 1))
    os.rename(pod, tmp_path / "pods" / "0.log.20260101-000000")
    append(pod, lines("c", 1))
    p.start().tick()
    assert p.counted() == once("a", 2) + once("b", 1) + once("c", 1)


def test_file_created_while_down_is_read_from_start_even_with_from_end(tmp_path, state):
    old = tmp_path / "a.jsonl"
    append(old, lines("history", 3))
    p = Pipeline(tmp_path / "*.jsonl", state=state, from_end=True).tick()
    assert p.counted() == {}
    append(old, lines("a", 1))
    p.tick().stop()
    append(tmp_path / "b.jsonl", lines("b", 2))
    p.start().tick()
    assert p.counted() == once("a", 1) + once("b", 2)


def test_state_entries_for_files_no_longer_followed_are_dropped(tmp_path, state):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    append(a, lines("a", 1))
    append(b, lines("b", 1))
    p = Pipeline(a, b, state=state).tick()
    p.stop()
    append(b, lines("b", 1, start=1))
    p.config["files"] = [str(a)]
    p.start().tick()
    assert p.exp.tailer.files == [str(a)]
    assert p.counted() == once("a", 1) + once("b", 1)  # restored counters keep what was counted


def test_restored_label_guards_keep_folding_into_other(log, state):
    append(log, line("m1") + line("m2"))
    p = Pipeline(log, state=state, max_models=2).tick()
    p.stop()
    append(log, line("m3") + line("m1"))
    p.start().tick()
    assert p.counted() == {"m1": 2, "m2": 1, "__other__": 1}
    assert p.total("llm_exporter_label_overflow_total", label="model") == 1


def test_histograms_and_float_sums_survive_exactly(log, state):
    append(log, line("m", duration_s=0.3, cost_usd=0.1) + line("m", duration_s=7, cost_usd=0.2))
    p = Pipeline(log, state=state).tick()
    before = {k: v for k, v in p.samples().items() if k[0].startswith("llm_") and "state" not in k[0]}
    p.restart().tick()
    after = {k: v for k, v in p.samples().items() if k[0].startswith("llm_") and "state" not in k[0]}
    assert after == before
    assert p.total("llm_cost_usd_total") == 0.1 + 0.2  # bit-exact float, not re-summed differently


def test_two_files_resume_independently(tmp_path, state):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    append(a, lines("a", 2))
    p = Pipeline(tmp_path / "*.jsonl", state=state).tick()
    append(b, lines("b", 1))
    p.tick().stop()
    append(a, lines("a", 1, start=2))
    append(b, lines("b", 2, start=1))
    p.start().tick()
    assert p.counted() == once("a", 3) + once("b", 3)


# ----------------------------------------------------------------------------- unusable state files


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b'{"format": "llm-log-exporter-state"}', b"\x00" * 64])
def test_corrupt_or_foreign_state_falls_back_to_full_read(log, state, content, caplog):
    append(log, lines("a", 3))
    state.write_bytes(content)
    p = Pipeline(log, state=state).tick()
    assert p.counted() == once("a", 3)
    assert "state file" in caplog.text and "ignoring it" in caplog.text
    result = "corrupt" if content in (b"", b"{not json", b"\x00" * 64) else "foreign"
    assert p.total("llm_exporter_state_load_info", result=result) == 1
    p.save()  # replaced by a good one at the next save
    p.restart().tick()
    assert p.counted() == once("a", 3)
    assert p.total("llm_exporter_state_load_info", result="restored") == 1


def test_corrupt_section_falls_back_without_partial_restore(log, state, caplog):
    append(log, lines("a", 2))
    Pipeline(log, state=state).tick().stop()
    doc = orjson.loads(state.read_bytes())
    doc["metrics"]["files"]["files"][str(log)][FILE_SLOTS.index("read_bytes")] = -5
    state.write_bytes(orjson.dumps(doc))
    p = Pipeline(log, state=state).tick()
    assert p.counted() == once("a", 2)
    assert "is corrupt" in caplog.text


def test_state_written_with_other_buckets_is_foreign(log, state, caplog):
    append(log, line("m", duration_s=3))
    Pipeline(log, state=state).tick().stop()
    p = Pipeline(log, state=state, buckets=(1.0, 5.0)).tick()
    assert "foreign" in caplog.text and "buckets" in caplog.text
    assert p.counted() == {"m": 1}
    assert p.total("llm_request_duration_seconds_bucket", le="5.0") == 1


def test_unwritable_state_is_counted_not_fatal(log, tmp_path, caplog):
    append(log, lines("a", 1))
    target = tmp_path / "state-dir"
    target.mkdir()  # a directory where the file should be: every save fails
    p = Pipeline(log, state=target).tick()
    assert p.exp.save_state() is False
    assert p.exp.save_state() is False
    assert p.total("llm_exporter_state_saves_total", result="error") == 2
    assert caplog.text.count("cannot save state file") == 1  # logged once per distinct error
    assert p.counted() == once("a", 1)


def test_save_is_atomic_and_skipped_when_unchanged(log, state):
    append(log, lines("a", 1))
    p = Pipeline(log, state=state).tick().save()
    first = state.stat()
    p.tick().save()
    assert state.stat().st_mtime_ns == first.st_mtime_ns  # nothing changed: no write
    append(log, lines("a", 1, start=1))
    p.tick().save()
    assert state.stat().st_ino != first.st_ino  # replaced by rename, never rewritten in place
    assert not Path(f"{state}.tmp").exists()
