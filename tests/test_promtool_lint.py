"""`promtool check metrics` finds no problem in the live daemon's text exposition."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ExporterProcess, http_get, value
from tests.history import BUDGETS, HISTORY_FILES

pytestmark = pytest.mark.slow


def test_live_exposition_passes_promtool_check_metrics(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install the Debian package 'prometheus'"
    # Every family with data: requests, both histograms, gateway events, budgets, an invalid line.
    args = ["--file", str(HISTORY_FILES[0]), "--budgets", str(BUDGETS), "--namespace", "aigateway"]
    with ExporterProcess(args) as exp:
        exp.wait_ready()
        code, text = http_get(exp.url + "/metrics", headers={"Accept": "text/plain"})
        assert code == 200
    assert text.startswith("# HELP") and "# EOF" not in text  # the Prometheus text format, not OpenMetrics
    from tests.helpers import parse_exposition

    samples = parse_exposition(text)
    for family in ("aigateway_time_to_first_token_seconds_count", "aigateway_budget_usage_ratio",
                   "aigateway_active_streams", "llm_exporter_invalid_lines_total", "process_cpu_seconds_total"):
        value(samples, family)
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60,
                           check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "" and check.stderr.strip() == ""
