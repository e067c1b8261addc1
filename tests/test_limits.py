"""Resource bounds: label sets, label length, stream-start keys, and the daemon's memory under floods."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llm_log_exporter.aggregate.labels import OTHER
from llm_log_exporter.aggregate.streams import MAX_CALL_ID_LENGTH
from llm_log_exporter.aggregate.usage import Usage
from llm_log_exporter.events import Request, StreamStart
from tests.helpers import ExporterProcess, event_line, metrics_for_files, value

GIB = 1 << 30
# Generous: measured ~32 MiB after the 1 GiB file and ~50 MiB after the floods; 350 MiB before the bounds.
RSS_LIMIT_MIB = 128


def _line(**fields: object) -> str:
    return event_line(**{"model": "m", "provider": "p", **fields})


def test_label_sets_fold_into_other_and_nothing_is_lost(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text("".join(_line(tenant_id=f"t{i % 25}", model=f"m{i % 2}", prompt_tokens=1) for i in range(100)))
    samples = metrics_for_files([log], max_label_sets=10)
    assert value(samples, "llm_requests_total") == 100
    assert value(samples, "llm_tokens_total", type="input") == 100
    other = value(samples, "llm_requests_total", tenant_id=OTHER, provider=OTHER, model=OTHER)
    assert other == 100 - 10 * 2  # the first ten combinations (two lines each) keep their own series
    tenants = {dict(labels)["tenant_id"] for name, labels in samples if name == "llm_requests_total"}
    assert len(tenants) == 11
    assert value(samples, "llm_exporter_label_overflow_total", label="label_set") > 0


def test_label_length_is_a_flag(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text(_line(tenant_id="x" * 500 + "\u0007") + _line(tenant_id="y" * 20))
    samples = metrics_for_files([log], max_label_length=32)
    assert value(samples, "llm_requests_total", tenant_id="x" * 32) == 1
    assert value(samples, "llm_requests_total", tenant_id="y" * 20) == 1


def test_long_raw_labels_are_not_cached() -> None:
    usage = Usage()
    for i in range(50):
        usage.request(Request(None, "", "m", "p", f"{i}" + "z" * 100_000, "success", None, None, None, False,
                              1, 0, 0, 0, 0, None, None))
    assert not any(len(raw[0]) > 1000 for raw in usage._keys)
    assert sum(rec[0] for rec in usage.records.values()) == 50


def test_stream_start_keys_are_capped() -> None:
    usage = Usage(max_streams=100)
    call_id = "c" * 1_000_000
    usage.stream_start(StreamStart(1.0, call_id, "t", "p", "m"))
    assert [len(k) for k in usage.streams.starts] == [MAX_CALL_ID_LENGTH]
    usage.request(Request(2.0, call_id, "m", "p", "t", "success", None, 1.0, None, True, 1, 1, 0, 0, 0, None, None))
    assert not usage.streams.starts  # the end still finds its (capped) start


def _memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for row in status:
            name, _, rest = row.partition(":")
            if name in ("VmHWM", "VmRSS"):
                fields[name] = int(rest.split()[0])
    return fields


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc")
def test_rss_bounded_for_lineless_gigabyte_and_floods(tmp_path: Path) -> None:
    big = tmp_path / "lineless.jsonl"
    with open(big, "wb") as f:  # sparse: 1 GiB of zero bytes, not one newline, no disk used
        f.truncate(GIB)
    flood = tmp_path / "flood.jsonl"
    with ExporterProcess(["--file", str(tmp_path / "*.jsonl"), "--poll-interval", "0.2"]) as exp:
        exp.wait_ready(timeout=120)
        exp.wait_value("llm_exporter_read_bytes_total", GIB, file=str(big), timeout=120)
        samples = exp.scrape()
        assert value(samples, "llm_exporter_invalid_lines_total", file=str(big), reason="oversized") == 1
        after_big = _memory_kib(exp.proc.pid)

        long_text = "q" * 100_000
        with open(flood, "w") as f:
            for i in range(200_000):  # distinct tenants far beyond --max-tenants
                f.write(_line(tenant_id=f"tenant-{i}", model=f"m{i % 50}", prompt_tokens=1))
            for i in range(1000):  # distinct 100 kB label values
                f.write(_line(tenant_id=f"{i}{long_text}", model=f"{i}{long_text}", prompt_tokens=1))
            for i in range(1000):  # stream starts with 100 kB call ids that never end
                f.write(json.dumps({"v": 1, "event": "stream_start", "call_id": f"{i}{long_text}",
                                    "model": "m", "provider": "p"}) + "\n")
        requests = 201_000
        exp.wait_value("llm_tokens_total", requests, type="input", timeout=600)  # ~100 MB of lines: minutes under load
        samples = exp.scrape()
        assert value(samples, "llm_exporter_lines_total", file=str(flood), result="parsed") == requests + 1000
        assert value(samples, "llm_exporter_label_overflow_total", label="tenant_id") > 0
        after_flood = _memory_kib(exp.proc.pid)
    print(f"RSS after 1 GiB line-less file: {after_big}; after floods: {after_flood} (KiB)")
    assert after_big["VmHWM"] < RSS_LIMIT_MIB * 1024, after_big
    assert after_flood["VmHWM"] < RSS_LIMIT_MIB * 1024, after_flood
