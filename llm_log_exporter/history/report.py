"""A terminal summary of usage history: requests, failures, tokens, cost and exact latency
percentiles, grouped by model / tenant / provider / attribution label (``repo``, …) and calendar
period, with a totals row.

Inputs are read by the same code as ``replay`` (``Timeline``: same parsing, same bad-line
accounting, same borrowed times for events without ``ts``). Percentiles are exact, computed from
every duration in the group (linear interpolation between the closest ranks), not estimated from
histogram buckets; that costs 8 bytes per request with a duration.
"""

from __future__ import annotations

import csv
import io
import json
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from llm_log_exporter.aggregate.periods import PERIODS, period_label
from llm_log_exporter.events import Request
from llm_log_exporter.schema import LABEL_NAME

DIMENSIONS = {"model": "model", "tenant": "tenant_id", "provider": "provider"}
_NO_LABELS: dict[str, str] = {}  # any other --by key is an attribution label of the lines (repo, project, …)
FORMATS = ("table", "csv", "json")
TOTAL = "total"
MAX_CELL = 40  # table cells longer than this are cut (CSV and JSON keep every character)


def quantile(ordered: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (NumPy's default); None for no data."""
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class Group:
    requests: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    no_cost: int = 0  # requests whose cost is unknown (not in cost_usd)
    durations: array = field(default_factory=lambda: array("d"))

    def add(self, ev: Request) -> None:
        self.requests += 1
        if ev.status != "success":
            self.failed += 1
        self.input_tokens += ev.prompt_tokens
        self.output_tokens += ev.completion_tokens
        if ev.cost_usd is None:
            self.no_cost += 1
        else:
            self.cost_usd += ev.cost_usd
        if ev.duration_s is not None:
            self.durations.append(ev.duration_s)

    def merge(self, other: Group) -> None:
        self.requests += other.requests
        self.failed += other.failed
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd
        self.no_cost += other.no_cost
        self.durations.extend(other.durations)

    def row(self) -> dict[str, float | int | None]:
        ordered = sorted(self.durations)
        return {
            "requests": self.requests,
            "failed": self.failed,
            "failure_rate": round(self.failed / self.requests, 6) if self.requests else 0.0,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 10),
            "requests_without_cost": self.no_cost,
            "p50_duration_s": _round(quantile(ordered, 0.5)),
            "p95_duration_s": _round(quantile(ordered, 0.95)),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


class Report:
    """Aggregates ``Request`` events in ``[start, end)`` by the chosen keys."""

    def __init__(
        self, by: Sequence[str], period: str | None = None, start: float | None = None, end: float | None = None
    ) -> None:
        unknown = [b for b in by if b not in DIMENSIONS and not LABEL_NAME.fullmatch(b)]
        if unknown or not by:
            raise ValueError(f"--by takes {', '.join(DIMENSIONS)} or attribution label names such as repo "
                             f"(comma-separated), not {','.join(unknown)!r}")
        if period is not None and period not in PERIODS:
            raise ValueError(f"--period takes {', '.join(PERIODS)}")
        self.by = list(dict.fromkeys(by))
        self.period = period
        self.start = start
        self.end = end
        self.groups: dict[tuple[str, ...], Group] = {}
        self.label_keys = [b for b in self.by if b not in DIMENSIONS]
        self.labels_seen: set[str] = set()  # label keys some request carried: the rest are typos
        self.outside = 0  # requests outside the window

    @property
    def columns(self) -> list[str]:
        return (["period"] if self.period else []) + self.by

    def add(self, ts: float, event: object) -> None:
        if type(event) is not Request:
            return
        if (self.start is not None and ts < self.start) or (self.end is not None and ts >= self.end):
            self.outside += 1
            return
        labels = event.labels or _NO_LABELS
        if labels and self.label_keys:
            self.labels_seen.update(b for b in self.label_keys if b in labels)
        key = tuple(getattr(event, DIMENSIONS[b]) if b in DIMENSIONS else labels.get(b, "") for b in self.by)
        if self.period:
            key = (period_label(ts, self.period), *key)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group()
        group.add(event)

    def feed(self, items: Iterable[tuple[float, int, object]]) -> None:
        for ts, _, event in items:
            self.add(ts, event)

    def check(self) -> None:
        """Raise ``ValueError`` for a ``--by`` label that no request carried (most likely a typo)."""
        missing = [b for b in self.label_keys if b not in self.labels_seen]
        if missing:
            raise ValueError(f"no request carries the label {', '.join(map(repr, missing))}; --by takes "
                             f"{', '.join(DIMENSIONS)} or an attribution label of the lines (repo, project, …)")

    def rows(self) -> list[tuple[tuple[str, ...], dict]]:
        """Rows sorted by period, then cost (highest first), then names; the totals row last."""
        period = 1 if self.period else 0

        def order(item: tuple[tuple[str, ...], Group]) -> tuple:
            key, group = item
            return (key[:period], -group.cost_usd, -group.requests, key[period:])

        rows = [(key, group.row()) for key, group in sorted(self.groups.items(), key=order)]
        total = Group()
        for group in self.groups.values():
            total.merge(group)
        rows.append(((TOTAL,) + ("",) * (len(self.columns) - 1), total.row()))
        return rows


# --- output formats --------------------------------------------------------------------------------

NUMERIC = [
    ("requests", "requests"), ("failed", "failed"), ("failure_rate", "fail %"),
    ("input_tokens", "input tok"), ("output_tokens", "output tok"), ("cost_usd", "cost USD"),
    ("p50_duration_s", "p50 s"), ("p95_duration_s", "p95 s"),
]


def _cell(name: str, value: object) -> str:
    if value is None:
        return "-"
    if name == "failure_rate":
        return f"{value:.1%}"
    if name == "cost_usd":
        return f"{value:,.4f}"
    if name.endswith("_duration_s"):
        return f"{value:.3f}"
    return f"{value:,}"


def _cut(text: str) -> str:
    text = text if text else "(none)"
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def to_table(report: Report) -> str:
    rows = report.rows()
    header = [*report.columns, *(title for _, title in NUMERIC)]
    body = [[_cut(k) for k in key] + [_cell(name, row[name]) for name, _ in NUMERIC] for key, row in rows[:-1]]
    key, row = rows[-1]
    body.append(list(key) + [_cell(name, row[name]) for name, _ in NUMERIC])  # totals: blank key cells
    keys = len(report.columns)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def fmt(line: list[str]) -> str:
        cells = [c.ljust(w) if i < keys else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [fmt(header), rule, *(fmt(line) for line in body[:-1]), rule, fmt(body[-1])]
    no_cost = rows[-1][1]["requests_without_cost"]
    if no_cost:
        lines.append(f"note: {no_cost:,} request(s) without a known cost are not in cost USD")
    return "\n".join(lines) + "\n"


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = [name for name, _ in NUMERIC] + ["requests_without_cost"]
    writer.writerow([*report.columns, *names])
    for key, row in report.rows():
        writer.writerow([*key, *("" if row[n] is None else row[n] for n in names)])
    return out.getvalue()


def to_json(report: Report, window: dict[str, str | None]) -> str:
    rows = report.rows()
    data = {
        "window": window,
        "by": report.by,
        "period": report.period,
        "rows": [dict(zip(report.columns, key, strict=True)) | row for key, row in rows[:-1]],
        "total": rows[-1][1],
    }
    return json.dumps(data, indent=2) + "\n"


def render(report: Report, fmt: str, window: dict[str, str | None]) -> str:
    report.check()
    if fmt == "table":
        return to_table(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "json":
        return to_json(report, window)
    raise ValueError(f"unknown format {fmt!r}")

