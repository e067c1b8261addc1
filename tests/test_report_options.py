"""report as a solo user runs it: no FILE (the hook's log), named windows in a time zone, sort and top,
the cached / cache-write / reasoning columns, and budgets against the daemon's own budget gauge."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import event_line, metrics_for_files, value
from tests.history import run_cli

TOKYO = ZoneInfo("Asia/Tokyo")


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    old = os.environ.copy()
    try:
        os.environ.update(env or {})
        for name, val in (env or {}).items():
            if val == "":
                del os.environ[name]
        done = run_cli(list(args))
    finally:
        os.environ.clear()
        os.environ.update(old)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def call(ts: float, **fields: object) -> str:
    return event_line("request", **{"ts": ts, "model": "m", "provider": "p", "tenant_id": "acme",
                                    "prompt_tokens": 100, "completion_tokens": 10, "cost_usd": 0.25, **fields})


def local_midnight(days_ago: int = 0, zone: ZoneInfo = TOKYO) -> float:
    today = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today - timedelta(days=days_ago)).timestamp()


def test_without_file_it_reads_the_hook_log_and_says_which(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".aider").mkdir(parents=True)
    (home / ".aider" / "usage.jsonl").write_text(call(time.time(), model="default-file"))
    code, out, err = cli("report", "--format", "json", env={"HOME": str(home), "LLM_USAGE_LOG": ""})
    assert code == 0, err
    assert f"reading {home}/.aider/usage.jsonl (the default" in err
    assert json.loads(out)["rows"][0]["model"] == "default-file"
    other = tmp_path / "elsewhere.jsonl"
    other.write_text(call(time.time(), model="from-env"))
    code, out, err = cli("report", "--format", "json", env={"HOME": str(home), "LLM_USAGE_LOG": str(other)})
    assert code == 0 and f"reading {other} ($LLM_USAGE_LOG)" in err
    assert json.loads(out)["rows"][0]["model"] == "from-env"
    code, _, err = cli("report", env={"HOME": str(tmp_path / "nobody"), "LLM_USAGE_LOG": ""})
    assert code == 2 and "does not exist" in err and "install-hook" in err


def test_named_windows_follow_the_time_zone(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    midnight = local_midnight()  # today's midnight in Tokyo
    lines = [call(midnight - 3600, model="tokyo-yesterday"), call(midnight + 60, model="tokyo-today"),
             call(local_midnight(40) + 60, model="long-ago")]
    log.write_text("".join(lines))

    def models(*args: str) -> set[str]:
        code, out, err = cli("report", str(log), "--format", "json", *args)
        assert code == 0, err
        return {row["model"] for row in json.loads(out)["rows"]}

    assert models("--start", "today", "--tz", "Asia/Tokyo") == {"tokyo-today"}
    assert models("--start", "yesterday", "--end", "yesterday", "--tz", "Asia/Tokyo") == {"tokyo-yesterday"}
    assert models("--start", "yesterday", "--tz", "Asia/Tokyo") == {"tokyo-yesterday", "tokyo-today"}
    # 15:00 UTC is midnight in Tokyo: in UTC both calls fall on one day, whatever the hour now.
    both = models("--start", "-2d", "--tz", "UTC")
    assert both == {"tokyo-yesterday", "tokyo-today"}
    code, out, _ = cli("report", str(log), "--format", "json", "--tz", "Asia/Tokyo", "--period", "day")
    days = {row["period"]: row["model"] for row in json.loads(out)["rows"]}
    today = datetime.now(TOKYO).date()
    assert days[today.isoformat()] == "tokyo-today" and days[(today - timedelta(days=1)).isoformat()] == (
        "tokyo-yesterday")
    code, _, err = cli("report", str(log), "--tz", "Mars/Olympus_Mons")
    assert code == 2 and "unknown time zone" in err
    code, _, err = cli("report", str(log), "--start", "tomorrow")
    assert code == 2 and "last-month" in err


def test_this_month_and_last_month(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    now = datetime.now(TOKYO)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    log.write_text(call(first.timestamp() - 60, model="last") + call(first.timestamp() + 60, model="this"))
    code, out, _ = cli("report", str(log), "--format", "json", "--tz", "Asia/Tokyo", "--start", "this-month")
    assert code == 0
    assert [r["model"] for r in json.loads(out)["rows"]] == ["this"]
    code, out, _ = cli("report", str(log), "--format", "json", "--tz", "Asia/Tokyo", "--start", "last-month",
                       "--end", "last-month")
    doc = json.loads(out)
    assert [r["model"] for r in doc["rows"]] == ["last"]
    assert doc["window"]["end"] == first.isoformat() and doc["window"]["tz"] == "Asia/Tokyo"


def test_sort_top_and_token_columns(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    now = time.time()
    log.write_text("".join([
        *(call(now, model="cheap-busy", cost_usd=0.01, cached_tokens=40) for _ in range(5)),
        call(now, model="dear", cost_usd=2.0, cache_write_tokens=30, reasoning_tokens=7),
        call(now, model="mid", cost_usd=0.5, status="failure", error_type="timeout"),
        call(now, model="mid", cost_usd=0.5),
    ]))

    def rows(*args: str) -> dict:
        code, out, err = cli("report", str(log), "--format", "json", *args)
        assert code == 0, err
        return json.loads(out)

    assert [r["model"] for r in rows()["rows"]] == ["dear", "mid", "cheap-busy"]
    assert [r["model"] for r in rows("--sort", "requests")["rows"]] == ["cheap-busy", "mid", "dear"]
    assert next(r["model"] for r in rows("--sort", "failed")["rows"]) == "mid"
    assert [r["model"] for r in rows("--sort", "name")["rows"]] == ["cheap-busy", "dear", "mid"]
    top = rows("--top", "1")
    assert [r["model"] for r in top["rows"]] == ["dear", "(other)"]
    assert top["rows"][1]["folded_rows"] == 2 and top["rows"][1]["requests"] == 7
    assert top["total"]["requests"] == 8 and top["total"]["cost_usd"] == pytest.approx(3.05)
    total = top["total"]
    assert (total["cached_tokens"], total["cache_write_tokens"], total["reasoning_tokens"]) == (200, 30, 7)
    code, table, _ = cli("report", str(log), "--top", "2")
    assert code == 0
    header = table.splitlines()[0].split()
    assert {"cached", "wr", "reasoning"} <= set(header)
    assert table.splitlines()[4].startswith("(other)")
    code, csv_text, _ = cli("report", str(log), "--format", "csv")
    assert code == 0
    assert csv_text.splitlines()[0].split(",")[6:9] == ["cached_tokens", "cache_write_tokens", "reasoning_tokens"]


def test_budgets_match_the_daemons_budget_gauge(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    budgets = tmp_path / "budgets.toml"
    budgets.write_text('[default]\nlimit_usd = 4\nperiod = "month"\n\n[tenants.acme]\nlimit_usd = 2\nperiod = "day"\n')
    today = local_midnight()
    log.write_text("".join([
        call(today - 7200, cost_usd=1.0),  # yesterday in Tokyo: not in acme's daily budget
        call(today + 60, cost_usd=0.75), call(time.time() - 5, cost_usd=0.5),
        call(today + 120, tenant_id="globex", cost_usd=1.0),
    ]))
    code, out, err = cli("report", str(log), "--format", "json", "--by", "tenant", "--tz", "Asia/Tokyo",
                         "--budgets", str(budgets), "--start", "today")
    assert code == 0, err
    lines = {b["tenant"]: b for b in json.loads(out)["budgets"]}
    assert lines["acme"]["spent_usd"] == 1.25 and lines["acme"]["used_ratio"] == 0.625
    assert lines["acme"]["period_label"] == datetime.now(TOKYO).date().isoformat()
    samples = metrics_for_files([log], budgets=str(budgets), tz="Asia/Tokyo")
    for tenant in ("acme", "globex"):
        gauge = value(samples, "llm_budget_usage_ratio", tenant_id=tenant)
        assert lines[tenant]["used_ratio"] == pytest.approx(gauge), tenant
    code, table, _ = cli("report", str(log), "--by", "tenant", "--tz", "Asia/Tokyo", "--budgets", str(budgets))
    assert "budgets: spend in each tenant's current budget period (Asia/Tokyo)" in table
    assert any(line.split()[:1] == ["acme"] and "62.5%" in line for line in table.splitlines())
    code, _, err = cli("report", str(log), "--format", "csv", "--budgets", str(budgets))
    assert code == 2 and "table or json" in err


def test_readme_aider_section_ends_with_the_page_and_todays_report() -> None:
    from tests.helpers import ROOT

    text = (ROOT / "README.md").read_text()
    start = text.index("## aider, unmodified")
    section = text[start:text.index("\n## ", start + 1)].strip().splitlines()
    assert section[-3:] == ["```sh", "llm-log-exporter report --start today", "```"]
    prose = " ".join(section[:-3])
    assert "open http://localhost:9464/" in prose[prose.rindex("```"):]
