"""Test helpers for history (replay / report): an independent reading of the fixture, the
replay CLI as a subprocess, and a small reader of timestamped OpenMetrics text."""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from tests.helpers import FIXTURES, ROOT

HISTORY = FIXTURES / "history"
HISTORY_FILES = [HISTORY / "gateway-a.jsonl", HISTORY / "gateway-b.jsonl.gz"]
BUDGETS = HISTORY / "budgets.toml"
T0 = 1751320800  # 2025-06-30T22:00:00Z, first hour of the fixture


def run_cli(args: Sequence[str], stdin: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m llm_log_exporter ARGS`` with this worktree's code."""
    return subprocess.run(
        [sys.executable, "-m", "llm_log_exporter", *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=timeout,
        check=False,
    )


def fixture_events(paths: Sequence[Path] = HISTORY_FILES) -> list[tuple[float, dict]]:
    """(ts, line) of every valid line, sorted by ts: a plain reading that shares no code with the
    exporter. A line without ts takes the previous line's time in its file."""
    out = []
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            previous = None
            for text in f:
                try:
                    obj = json.loads(text)
                except ValueError:
                    continue
                if any(isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0 for v in obj.values()):
                    continue
                ts = obj.get("ts")
                if ts is None:
                    ts = previous
                    obj["_borrowed"] = True  # placed by its neighbour's time; its own ts stays unknown
                elif isinstance(ts, str):
                    ts = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
                previous = ts
                out.append((ts, obj))
    out.sort(key=lambda item: item[0])
    return out


def requests(events: list[tuple[float, dict]], before: float, **labels: str) -> list[dict]:
    return [obj for ts, obj in events
            if ts < before and obj.get("event", "request") == "request"
            and all(obj.get(k) == v for k, v in labels.items())]


def prometheus_quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float:
    """Prometheus' histogram_quantile over cumulative ``counts`` (last bound +Inf), step by step."""
    observations = counts[-1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(counts) - 1) if counts[i] >= rank), len(counts) - 1)  # Go's sort.Search
    if b == len(counts) - 1:
        return bounds[-2]
    start = 0.0
    count = counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (bounds[b] - start) * (rank / count)


OmSeries = dict[tuple[str, frozenset], list[tuple[int, float]]]


def read_openmetrics(text: str) -> tuple[list[str], OmSeries]:
    """Family names in file order and every series' points, checking the layout promtool and the
    OpenMetrics text format need: no blank line, ``# EOF`` last, families and series contiguous,
    integer second timestamps increasing within a series, counters named ``_total``."""
    assert text.endswith("# EOF\n"), text[-200:]
    lines = text[: -len("# EOF\n")].split("\n")[:-1]
    assert "" not in lines, "blank line"
    families: list[str] = []
    types: dict[str, str] = {}
    series: OmSeries = {}
    finished: set[tuple[str, frozenset]] = set()
    current: tuple[str, frozenset] | None = None
    family = None
    for line in lines:
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types, f"family {name} interleaved"
            families.append(name)
            types[name] = kind
            family = name
            continue
        if line.startswith("# "):
            assert line.startswith(("# HELP ", "# UNIT ")), line
            continue
        head, value, ts = line.rsplit(" ", 2)
        name, _, rest = head.partition("{")
        labels = frozenset(tuple(part.split("=", 1)) for part in _split_labels(rest[:-1])) if rest else frozenset()
        assert family is not None and name.startswith(family), (family, name)
        if types[family] == "counter":
            assert name == family + "_total", name
        assert ts.isdigit(), f"timestamp {ts!r} is not whole seconds"
        key = (name, frozenset((k, v.strip('"')) for k, v in labels))
        point_key = (family, frozenset((k, v) for k, v in key[1] if k not in ("le", "quantile")))
        if point_key != current:
            assert point_key not in finished, f"series {point_key} interleaved"
            if current is not None:
                finished.add(current)
            current = point_key
        points = series.setdefault(key, [])
        assert not points or points[-1][0] < int(ts), f"{key}: timestamps not increasing"
        points.append((int(ts), float(value)))
    return families, series


def _split_labels(text: str) -> list[str]:
    parts, current, quoted, escaped = [], "", False, False
    for ch in text:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            current += ch
            escaped = True
        elif ch == '"':
            quoted = not quoted
            current += ch
        elif ch == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current:
        parts.append(current)
    return parts
