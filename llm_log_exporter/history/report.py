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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import tzinfo

from llm_log_exporter.aggregate.budgets import Budget
from llm_log_exporter.aggregate.periods import PERIODS, UTC, period_bounds, period_label, zone_name
from llm_log_exporter.aggregate.summary import DIMENSIONS, TOTAL, Summary, check_keys
from llm_log_exporter.events import Request

_NO_LABELS: dict[str, str] = {}  # any other --by key is an attribution label of the lines (repo, project, …)
FORMATS = ("table", "csv", "json")
MAX_CELL = 40  # table cells longer than this are cut (CSV and JSON keep every character)


class Report:
    """Aggregates ``Request`` events in ``[start, end)`` by the chosen keys, days and months in ``zone``."""

    def __init__(
        self, by: Sequence[str], period: str | None = None, start: float | None = None, end: float | None = None,
        zone: tzinfo = UTC, sort: str = "cost", top: int | None = None,
    ) -> None:
        self.by = check_keys(by, sort, top, labels=True)
        if period is not None and period not in PERIODS:
            raise ValueError(f"--period takes {', '.join(PERIODS)}")
        self.period = period
        self.start = start
        self.end = end
        self.zone = zone
        self.sort = sort
        self.top = top
        self.summary = Summary(self.by, period)
        self.label_keys = [b for b in self.by if b not in DIMENSIONS]
        self.labels_seen: set[str] = set()  # label keys some request carried: the rest are typos
        self.outside = 0  # requests outside the window
        self.budgets: BudgetReport | None = None

    @property
    def columns(self) -> list[str]:
        return self.summary.columns

    def add(self, ts: float, event: object) -> None:
        if type(event) is not Request:
            return
        if self.budgets is not None:
            self.budgets.add(ts, event)
        if (self.start is not None and ts < self.start) or (self.end is not None and ts >= self.end):
            self.outside += 1
            return
        labels = event.labels or _NO_LABELS
        if labels and self.label_keys:
            self.labels_seen.update(b for b in self.label_keys if b in labels)
        key = tuple(getattr(event, DIMENSIONS[b]) if b in DIMENSIONS else labels.get(b, "") for b in self.by)
        if self.period:
            key = (period_label(ts, self.period, self.zone), *key)
        self.summary.group(key).add_request(
            event.status, event.prompt_tokens, event.completion_tokens, event.cached_tokens,
            event.cache_write_tokens, event.reasoning_tokens, event.cost_usd, event.duration_s)

    def feed(self, items: Iterable[tuple[float, int, object]]) -> None:
        for ts, _, event in items:
            self.add(ts, event)

    def check(self) -> None:
        """Raise ``ValueError`` for a ``--by`` label that no request carried (most likely a typo)."""
        missing = [b for b in self.label_keys if b not in self.labels_seen]
        if missing:
            raise ValueError(f"no request carries the label {', '.join(map(repr, missing))}; --by takes "
                             f"{', '.join(DIMENSIONS)} or an attribution label of the lines (repo, project, …)")

    def rows(self) -> list[tuple[tuple[str, ...], dict, int]]:
        """Rows sorted by period, then ``sort`` (cost, highest first, by default); the totals row last."""
        return self.summary.rows(self.sort, self.top)


@dataclass
class BudgetLine:
    tenant: str
    budget: Budget
    start: float
    end: float
    spent: float = 0.0

    def row(self, zone: tzinfo) -> dict[str, object]:
        return {
            "tenant": self.tenant,
            "period": self.budget.period,
            "period_label": period_label(self.start, self.budget.period, zone),
            "limit_usd": self.budget.limit_usd,
            "spent_usd": round(self.spent, 10),
            "used_ratio": round(self.spent / self.budget.limit_usd, 6),
            "left_usd": round(self.budget.limit_usd - self.spent, 10),
        }


class BudgetReport:
    """Each tenant's spend in its budget period holding ``at`` (the window's end, else now), in ``zone``:
    the tenants the budgets file names, and every tenant with spend in its period when it has a default."""

    def __init__(self, tenants: dict[str, Budget], default: Budget | None, at: float, zone: tzinfo = UTC) -> None:
        self.default = default
        self.tenants = tenants
        self.at = at
        self.zone = zone
        self.lines: dict[str, BudgetLine] = {name: self._line(name, budget) for name, budget in tenants.items()}

    def _line(self, tenant: str, budget: Budget) -> BudgetLine:
        start, end = period_bounds(self.at, budget.period, self.zone)
        return BudgetLine(tenant, budget, start, end)

    def add(self, ts: float, event: Request) -> None:
        if event.cost_usd is None:
            return
        line = self.lines.get(event.tenant_id)
        if line is None:
            if self.default is None:
                return
            line = self._line(event.tenant_id, self.default)
            if not line.start <= ts < line.end:
                return
            self.lines[event.tenant_id] = line
        if line.start <= ts < line.end:
            line.spent += event.cost_usd

    def rows(self) -> list[dict[str, object]]:
        lines = sorted(self.lines.values(), key=lambda line: (-line.spent / line.budget.limit_usd, line.tenant))
        return [line.row(self.zone) for line in lines]


# --- output formats --------------------------------------------------------------------------------

NUMERIC = [
    ("requests", "requests"), ("failed", "failed"), ("failure_rate", "fail %"),
    ("input_tokens", "input tok"), ("output_tokens", "output tok"), ("cached_tokens", "cached"),
    ("cache_write_tokens", "cache wr"), ("reasoning_tokens", "reasoning"), ("cost_usd", "cost USD"),
    ("p50_duration_s", "p50 s"), ("p95_duration_s", "p95 s"),
]
BUDGET_COLUMNS = [("tenant", "budget tenant"), ("period_label", "period"), ("limit_usd", "limit USD"),
                  ("spent_usd", "spent USD"), ("used_ratio", "used"), ("left_usd", "left USD")]


def _cell(name: str, value: object) -> str:
    if value is None:
        return "-"
    if name in ("failure_rate", "used_ratio"):
        return f"{value:.1%}"
    if name in ("cost_usd", "limit_usd", "spent_usd", "left_usd"):
        return f"{value:,.4f}"
    if name.endswith("_duration_s"):
        return f"{value:.3f}"
    if isinstance(value, str):
        return _cut(value)
    return f"{value:,}"


def _cut(text: str) -> str:
    text = text if text else "(none)"
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def _grid(header: list[str], body: list[list[str]], keys: int, total: list[str] | None) -> list[str]:
    """Columns padded to their widest cell: keys left-aligned, numbers right-aligned; a rule above totals."""
    lines_ = [header, *body, *([total] if total else [])]
    widths = [max(len(line[i]) for line in lines_) for i in range(len(header))]

    def fmt(line: list[str]) -> str:
        cells = [c.ljust(w) if i < keys else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [fmt(header), rule, *(fmt(line) for line in body)]
    if total:
        out += [rule, fmt(total)]
    return out


SUBSETS = ("cached_tokens", "cache_write_tokens", "reasoning_tokens")  # left out of the table when all zero


def to_table(report: Report) -> str:
    rows = report.rows()
    numeric = [(n, t) for n, t in NUMERIC if n not in SUBSETS or rows[-1][1][n]]
    header = [*report.columns, *(title for _, title in numeric)]
    body = [[_cut(k) if k or not folded else "" for k in key] + [_cell(name, row[name]) for name, _ in numeric]
            for key, row, folded in rows[:-1]]
    key, row, _ = rows[-1]
    total = list(key) + [_cell(name, row[name]) for name, _ in numeric]  # totals: blank key cells
    lines = _grid(header, body, len(report.columns), total)
    no_cost = rows[-1][1]["requests_without_cost"]
    if no_cost:
        lines.append(f"note: {no_cost:,} request(s) without a known cost are not in cost USD")
    folded = sum(n for _, _, n in rows)
    if folded:
        lines.append(f"note: rows past --top {report.top} are summed in (other) rows ({folded:,} row(s))")
    if report.budgets is not None:
        budget_rows = report.budgets.rows()
        lines += ["", f"budgets: spend in each tenant's current budget period ({zone_name(report.zone)})"]
        if budget_rows:
            lines += _grid([title for _, title in BUDGET_COLUMNS],
                           [[_cell(name, r[name]) for name, _ in BUDGET_COLUMNS] for r in budget_rows], 2, None)
        else:
            lines.append("budgets: no tenant has a budget or spend in its budget period")
    return "\n".join(lines) + "\n"


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = [name for name, _ in NUMERIC] + ["requests_without_cost"]
    writer.writerow([*report.columns, *names])
    for key, row, _ in report.rows():
        writer.writerow([*key, *("" if row[n] is None else row[n] for n in names)])
    return out.getvalue()


def to_json(report: Report, window: dict[str, str | None]) -> str:
    data = report.summary.document(window, report.sort, report.top)
    if report.budgets is not None:
        data["budgets"] = report.budgets.rows()
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


__all__ = ["FORMATS", "TOTAL", "BudgetReport", "Report", "render"]
