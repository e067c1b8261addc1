"""The daemon's landing page and /api/v1/usage: the numbers equal `report` for the same window and zone,
they survive a restart through the state file, the page is self-contained and escaped, and the server's
basic auth guards it like /metrics."""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from llm_log_exporter.daemon import Config, Exporter
from llm_log_exporter.exposition.pages import Pages, money
from tests.helpers import ExporterProcess, event_line, http_get
from tests.history import run_cli

ZONE = "America/New_York"
MODELS = ("gpt-4o", "claude-sonnet-4-5", "gpt-4o-mini")
TENANTS = ("acme", "globex", "")
WINDOWS = [("today", None), ("yesterday", "yesterday"), ("this-month", None), ("last-month", "last-month"),
           ("this-week", None)]


def history_lines(now: float, days: int = 70) -> str:
    """Three calls every 7 hours over ``days`` days up to ``now``, in time order: failures, unknown costs,
    cached / cache-write / reasoning tokens, a call without ts now and then. Costs are multiples of 1/1024,
    so sums are exact in any order."""
    lines = []
    ts = now - days * 86400
    i = 0
    while ts < now:
        for j in range(3):
            i += 1
            fields: dict[str, Any] = {
                "ts": round(ts + j, 3), "model": MODELS[i % 3], "provider": "openai" if i % 3 != 1 else "anthropic",
                "tenant_id": TENANTS[(i // 3) % 3], "status": "failure" if i % 11 == 0 else "success",
                "error_type": "server_error" if i % 11 == 0 else None, "duration_s": 0.05 + (i % 40) * 0.13,
                "prompt_tokens": 100 + i % 900, "completion_tokens": 10 + i % 300, "cached_tokens": i % 50,
                "cache_write_tokens": i % 7, "reasoning_tokens": i % 5,
                "cost_usd": None if i % 13 == 0 else (i % 97) / 1024,
            }
            if i % 17 == 0:
                del fields["ts"]  # placed at the time of the line before it, by report and by the daemon
            lines.append(event_line("request", **fields))
        ts += 7 * 3600
    return "".join(lines)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pages") / "usage.jsonl"
    path.write_text(history_lines(time.time() - 60))
    return path


def newest_day(path: Path) -> datetime:
    """The day (in ZONE) of the newest call: the last day the daemon keeps. It is today, or yesterday in the
    hours after midnight (calls are 7 hours apart)."""
    newest = max(json.loads(line).get("ts", 0) for line in path.read_text().splitlines())
    return datetime.fromtimestamp(newest, ZoneInfo(ZONE))


def exporter_pages(files: list[Path], **options: Any) -> tuple[Exporter, Pages]:
    exporter = Exporter(Config(files=[str(f) for f in files], poll=True, prices="off", **options))
    exporter.tailer.poll_once()
    exporter.store.ready.set()
    pages = exporter.pages()
    assert pages is not None
    return exporter, pages


def api(pages: Pages, query: str) -> tuple[int, dict]:
    code, body, content_type, _ = pages.api(query)
    assert content_type == "application/json"
    return code, json.loads(body)


def without_percentiles(doc: dict) -> dict:
    drop = {"p50_duration_s", "p95_duration_s", "days_kept", "percentiles", "complete"}
    out = {k: v for k, v in doc.items() if k not in drop}
    out["rows"] = [{k: v for k, v in row.items() if k not in drop} for row in doc["rows"]]
    out["total"] = {k: v for k, v in doc["total"].items() if k not in drop}
    return out


def report_json(files: list[Path], *args: str) -> dict:
    done = run_cli(["report", *map(str, files), "--format", "json", "--prices", "off", "--tz", ZONE, *args])
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


@pytest.mark.parametrize(("start", "end"), WINDOWS)
def test_api_equals_report_for_the_same_window(history: Path, start: str, end: str | None) -> None:
    exporter, pages = exporter_pages([history], tz=ZONE)
    try:
        query = f"start={start}&by=model,tenant&period=day" + (f"&end={end}" if end else "")
        code, doc = api(pages, query)
    finally:
        exporter.tailer.close()
    assert code == 200
    expected = report_json([history], "--start", start, *(["--end", end] if end else []), "--by", "model,tenant",
                           "--period", "day")
    if expected["window"] != doc["window"]:  # the calls straddled midnight: ask again
        pytest.skip("midnight passed between the two readings")
    assert doc["total"]["requests"] > 0 or start == "today"
    assert without_percentiles(doc) == without_percentiles(expected)
    assert doc["days_kept"]["last"] == newest_day(history).date().isoformat()


def test_api_says_when_the_window_begins_before_the_days_kept(history: Path) -> None:
    exporter, pages = exporter_pages([history], tz=ZONE, daily_days=40)
    try:
        _, old = api(pages, "start=2020-01-01&by=tenant")
        _, recent = api(pages, "start=yesterday&by=tenant")
    finally:
        exporter.tailer.close()
    assert old["complete"] is False and recent["complete"] is True
    first = old["days_kept"]["first"]
    assert first == (newest_day(history).date() - timedelta(days=39)).isoformat()
    expected = report_json([history], "--start", first, "--by", "tenant")
    assert without_percentiles(old)["rows"] == without_percentiles(expected)["rows"]


def test_api_percentiles_follow_the_histogram_buckets(history: Path) -> None:
    """Bucket estimates (Prometheus' rule) near the exact ones; the document says which they are."""
    exporter, pages = exporter_pages([history], tz=ZONE, buckets=(0.5, 1, 2, 3, 4, 5, 6))
    try:
        _, doc = api(pages, "start=last-month&end=this-month&by=provider")
    finally:
        exporter.tailer.close()
    exact = report_json([history], "--start", "last-month", "--end", "last-month", "--by", "provider")["total"]
    assert "buckets" in doc["percentiles"]
    assert abs(doc["total"]["p50_duration_s"] - exact["p50_duration_s"]) <= 1.0
    assert abs(doc["total"]["p95_duration_s"] - exact["p95_duration_s"]) <= 1.0


def test_api_refuses_what_it_cannot_answer(history: Path) -> None:
    exporter, pages = exporter_pages([history], tz=ZONE)
    try:
        for query, message in [("start=2025-07-01T12:00:00Z", "not a day"), ("by=colour", "by takes"),
                               ("period=year", "period takes"), ("sort=size", "sort takes"), ("top=0", "at least 1"),
                               ("start=today&end=yesterday", "before end"), ("since=today", "unknown parameter")]:
            code, doc = api(pages, query)
            assert code == 400 and message in doc["error"], (query, doc)
        exporter.store.ready.clear()
        assert api(pages, "")[0] == 503
    finally:
        exporter.tailer.close()


def test_page_numbers_are_report_numbers_and_survive_a_restart(history: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    exporter, pages = exporter_pages([history], tz=ZONE, state_file=str(state))
    try:
        page = pages.landing()
        assert exporter.save_state()
        parsed = exporter.store.files[str(history)].lines_parsed
    finally:
        exporter.tailer.close()
    today = report_json([history], "--start", "today", "--by", "model")["total"]
    month = report_json([history], "--start", "this-month", "--by", "model")["total"]
    assert f'id="today-spend">{money(today["cost_usd"])}<' in page
    assert f'id="today-requests">{today["requests"]:,}<' in page
    assert f'id="month-spend">{money(month["cost_usd"])}<' in page
    assert f'id="month-requests">{month["requests"]:,}<' in page
    assert f'id="month-tokens">{month["input_tokens"] + month["output_tokens"]:,}<' in page
    bars = re.findall(r'<rect class="bar" data-day="([\d-]+)" data-cost="([^"]+)"', page)
    assert len(bars) == 30 and bars[-1][0] == datetime.now(ZoneInfo(ZONE)).date().isoformat()
    yesterday = report_json([history], "--start", "yesterday", "--end", "yesterday", "--by", "model")["total"]
    assert float(bars[-2][1]) == pytest.approx(yesterday["cost_usd"], abs=1e-9)
    # A restart restores the per-day sums from the state file and reads nothing again.
    again, pages_again = exporter_pages([history], tz=ZONE, state_file=str(state))
    try:
        assert again.checkpointer is not None and again.checkpointer.load_result == "restored"
        assert again.store.files[str(history)].lines_parsed == parsed  # resumed at the end: nothing re-read
        assert _numbers(pages_again.landing()) == _numbers(page)
    finally:
        again.tailer.close()


def _numbers(page: str) -> list[str]:
    return re.findall(r'id="(?:today|month)-\w+">([^<]*)<', page) + re.findall(r'data-cost="([^"]+)"', page)


def test_state_written_in_another_zone_is_not_reused(history: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first, _ = exporter_pages([history], tz=ZONE, state_file=str(state))
    first.save_state()
    first.tailer.close()
    second, _ = exporter_pages([history], tz="Asia/Tokyo", state_file=str(state))
    try:
        assert second.checkpointer is not None and second.checkpointer.load_result == "foreign"
        assert second.store.files[str(history)].lines_parsed > 0  # read again, cut into Tokyo days
    finally:
        second.tailer.close()


def test_page_escapes_labels_and_loads_nothing_from_outside(tmp_path: Path) -> None:
    log = tmp_path / "usage.jsonl"
    log.write_text(event_line("request", ts=time.time() - 5, model="<script>alert(1)</script>", provider="p",
                              tenant_id='"><img src=x>', prompt_tokens=5, cost_usd=0.5))
    exporter, pages = exporter_pages([log, tmp_path / "nope-*.jsonl"], tz="UTC")
    try:
        code, body, content_type, headers = pages.handle("/", "")  # type: ignore[misc]
    finally:
        exporter.tailer.close()
    page = body.decode()
    assert code == 200 and content_type.startswith("text/html")
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # no external asset: works offline
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert 'http-equiv="refresh"' in page and 'href="/metrics"' in page
    assert re.search(r"nope-\*\.jsonl</td><td>missing", page)
    assert re.search(r"usage\.jsonl</td><td>following</td><td>1<", page)


def _get(url: str, auth: tuple[str, str] | None = None, method: str = "GET") -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, method=method)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def _status(url: str, auth: tuple[str, str]) -> int:
    try:
        return _get(url, auth)[0]
    except OSError:
        return 0


@pytest.mark.slow
def test_daemon_serves_the_page_behind_basic_auth(tmp_path: Path) -> None:
    bcrypt = pytest.importorskip("bcrypt")
    pytest.importorskip("yaml")
    log = tmp_path / "usage.jsonl"
    now = time.time()
    log.write_text("".join(event_line("request", ts=now - 10 * i, model="gpt-4o", provider="openai",
                                      tenant_id="acme", prompt_tokens=10, cost_usd=0.25) for i in range(3)))
    web = tmp_path / "web.yml"
    web.write_text(json.dumps({"basic_auth_users": {"alice": bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()}}))
    with ExporterProcess(["--file", str(log), "--web.config.file", str(web), "--tz", "UTC"]) as exp:
        exp.wait_until(lambda: _status(exp.url + "/readyz", ("alice", "s3cret")) == 200, 30, "ready")
        for path in ("/", "/api/v1/usage?start=today"):
            code, _, headers = _get(exp.url + path)
            assert code == 401 and "Basic" in headers["WWW-Authenticate"], path
        code, body, headers = _get(exp.url + "/", ("alice", "s3cret"))
        assert code == 200 and 'id="today-spend">$0.7500<' in body.decode()
        code, body, _ = _get(exp.url + "/api/v1/usage?start=today&by=tenant", ("alice", "s3cret"))
        assert code == 200 and json.loads(body)["rows"][0] == json.loads(body)["rows"][0] | {
            "tenant": "acme", "requests": 3, "cost_usd": 0.75}
        assert _get(exp.url + "/", ("alice", "s3cret"), method="HEAD")[0] == 200
        assert _get(exp.url + "/api/v1/usage", ("alice", "s3cret"), method="POST")[0] == 405


@pytest.mark.slow
def test_daemon_page_follows_appends(tmp_path: Path) -> None:
    log = tmp_path / "usage.jsonl"
    log.write_text("")
    with ExporterProcess(["--file", str(log), "--tz", "Pacific/Kiritimati", "--poll-interval", "0.2"]) as exp:
        exp.wait_ready()
        assert 'id="today-requests">0<' in http_get(exp.url + "/")[1]
        with open(log, "a") as f:
            f.write(event_line("request", ts=time.time(), model="m", provider="p", prompt_tokens=7, cost_usd=1.5))
        exp.wait_until(lambda: 'id="today-spend">$1.50<' in http_get(exp.url + "/")[1], 20, "the appended call")
        doc = json.loads(http_get(exp.url + "/api/v1/usage?start=today")[1])
        assert doc["window"]["tz"] == "Pacific/Kiritimati" and doc["total"]["input_tokens"] == 7
        local_midnight = datetime.now(ZoneInfo("Pacific/Kiritimati")).replace(hour=0, minute=0, second=0,
                                                                                microsecond=0)
        assert doc["window"]["start"] == local_midnight.isoformat()
        assert (local_midnight + timedelta(days=1)).utcoffset() == timedelta(hours=14)
