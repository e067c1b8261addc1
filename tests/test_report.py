"""report: golden outputs of the three formats on the history fixture, and their numbers checked
against an independent reading of the same files.

Regenerate the golden files after an intended change with ``UPDATE_GOLDEN=1 python -m pytest tests/test_report.py``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics

import pytest

from tests.helpers import FIXTURES
from tests.history import HISTORY_FILES, T0, fixture_events, run_cli

GOLDEN = FIXTURES / "report"
ARGS = ["report", *map(str, HISTORY_FILES), "--by", "model,tenant", "--period", "day", "--prices", "off", "--tz", "UTC"]


def report(*args: str) -> str:
    done = run_cli([*ARGS, *args])
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


@pytest.mark.parametrize(("fmt", "name"), [("table", "day-model-tenant.txt"), ("csv", "day-model-tenant.csv"),
                                           ("json", "day-model-tenant.json")])
def test_golden(fmt: str, name: str) -> None:
    got = report("--format", fmt)
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(got)
    assert got == path.read_text()


def test_table_is_plain_and_narrow() -> None:
    text = report()
    assert "\x1b" not in text and text.isascii()
    assert max(map(len, text.splitlines())) <= 120
    lines = text.splitlines()
    assert lines[-3].startswith("-----") and lines[-2].split() == ["total", "240", "19", "7.9%", "575,907", "98,274",
                                                                 "31,237", "1.9254", "1.025", "3.950"]
    assert lines[-1] == "note: 4 request(s) without a known cost are not in cost USD"


def test_numbers_match_an_independent_reading() -> None:
    data = json.loads(report("--format", "json"))
    calls = [(ts, obj) for ts, obj in fixture_events() if obj.get("event", "request") == "request"]
    total = data["total"]
    assert total["requests"] == len(calls)
    assert total["failed"] == sum(obj["status"] == "failure" for _, obj in calls)
    assert total["input_tokens"] == sum(obj["prompt_tokens"] for _, obj in calls)
    assert total["cost_usd"] == pytest.approx(sum(obj["cost_usd"] or 0 for _, obj in calls), abs=1e-9)
    assert total["requests_without_cost"] == sum(obj["cost_usd"] is None for _, obj in calls)
    durations = [obj["duration_s"] for _, obj in calls]
    p50, p95 = (statistics.quantiles(durations, n=100, method="inclusive")[i] for i in (49, 94))
    assert total["p50_duration_s"] == round(p50, 6) and total["p95_duration_s"] == round(p95, 6)
    # Every row: the requests of that day, model and tenant.
    for row in data["rows"]:
        mine = [obj for ts, obj in calls if obj["model"] == row["model"] and obj["tenant_id"] == row["tenant"]
                and ((ts < T0 + 7200) == (row["period"] == "2025-06-30"))]
        assert row["requests"] == len(mine)
        assert row["p95_duration_s"] == round(
            statistics.quantiles([o["duration_s"] for o in mine], n=100, method="inclusive")[94], 6)
    assert sum(row["requests"] for row in data["rows"]) == total["requests"]
    assert {row["period"] for row in data["rows"]} == {"2025-06-30", "2025-07-01"}


def test_window_and_csv_totals_row() -> None:
    rows = list(csv.reader(io.StringIO(report("--format", "csv", "--start", "2025-07-01", "--end",
                                              "2025-07-01T02:00:00Z"))))
    assert rows[0][:3] == ["period", "model", "tenant"]
    assert {row[0] for row in rows[1:-1]} == {"2025-07-01"}
    assert rows[-1][0] == "total"
    calls = [obj for ts, obj in fixture_events() if T0 + 7200 <= ts < T0 + 14400
             and obj.get("event", "request") == "request"]
    assert int(rows[-1][3]) == len(calls)


def test_bad_input_is_reported_not_fatal(tmp_path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text('{"v":1,"model":"m","ts":1751320800,"duration_s":1}\nnot json\n{"v":1,"model":"m","cost_usd":-1}\n')
    done = run_cli(["report", str(log), "--by", "provider,model", "--period", "week"])
    assert done.returncode == 0
    assert b"2 invalid line(s) skipped (bad_field 1, not_json 1)" in done.stderr
    assert "2025-W27  (none)    m" in done.stdout.decode()
    bad = run_cli(["report", str(log), "--by", "colour"])
    assert bad.returncode == 2 and b"--by" in bad.stderr
