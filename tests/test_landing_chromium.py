"""The landing page rendered by a real headless Chromium (Debian package ``chromium``), served by the real
daemon: today's total and the 30-day spend chart are in the rendered DOM, and a screenshot is kept as a
test artifact (its path is printed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.helpers import ExporterProcess, event_line

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Without the background-networking flags Chromium keeps dialling out of this closed network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
ARTIFACTS = Path(os.environ.get("LLM_LOG_EXPORTER_TEST_ARTIFACTS") or Path(tempfile.gettempdir()) /
                 "llm-log-exporter-artifacts")


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM, "chromium is missing: scripts/test.sh installs the Debian package 'chromium' when root"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_headless_chromium_renders_todays_total_and_the_chart(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "usage.jsonl"
    now = time.time()
    lines = [event_line("request", ts=now - 86400 * day - 1, model="gpt-4o", provider="openai", tenant_id="acme",
                        prompt_tokens=1000, completion_tokens=100, cost_usd=0.5 * (day + 1))
             for day in range(10, -1, -1)]
    lines.append(event_line("request", ts=now - 1, model="claude-sonnet-4-5", provider="anthropic",
                            tenant_id="globex", prompt_tokens=50, completion_tokens=5, cost_usd=1.25))
    log.write_text("".join(lines))
    with ExporterProcess(["--file", str(log), "--tz", "UTC"]) as exp:
        exp.wait_ready()
        dom = chromium(tmp_path / "profile-dom", "--dump-dom", exp.url + "/")
        shot = tmp_path / "landing-page.png"
        picture = chromium(tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,1700",
                           "--hide-scrollbars", exp.url + "/")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    # Today (UTC): the day-0 call of acme ($0.50) and globex's $1.25.
    assert re.search(r'id="today-spend"[^>]*>\$1\.75<', html), html[:3000]
    assert re.search(r'id="today-requests"[^>]*>2<', html)
    assert "Today by model" in html and "claude-sonnet-4-5" in html
    assert re.search(r'<svg[^>]*id="spend-chart"', html)
    bars = re.findall(r'<rect class="bar" data-day="([\d-]+)" data-cost="([^"]+)"[^>]* height="([\d.]+)"', html)
    assert len(bars) == 30
    heights = {day: float(height) for day, _, height in bars}
    costs = [float(cost) for _, cost, _ in bars]
    assert costs[-11:] == [5.5, 5.0, 4.5, 4.0, 3.5, 3.0, 2.5, 2.0, 1.5, 1.0, 1.75] and costs[:-11] == [0.0] * 19
    assert max(heights.values()) == heights[bars[-11][0]] > heights[bars[-1][0]] > 0
    assert picture.returncode == 0 and shot.stat().st_size > 10_000, picture.stderr[-2000:]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    kept = ARTIFACTS / "landing-page.png"
    shutil.copyfile(shot, kept)
    with capsys.disabled():
        print(f"\nlanding page screenshot: {kept} (and {shot})")
