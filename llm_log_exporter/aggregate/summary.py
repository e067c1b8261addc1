"""Usage summed by keys (model, tenant, provider and a period): the rows of ``report`` and of the daemon's
``/api/v1/usage``, declared once so both answer in the same shape.

A group sums requests, failures, tokens (input, output and the cached, cache-write and reasoning subsets)
and cost. Its latency percentiles are exact where every duration is at hand (``report`` keeps them: 8 bytes
per request) and estimated from histogram buckets where only those are kept (the daemon's per-day
aggregates), with Prometheus' ``histogram_quantile`` rule, so the page and Grafana agree.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from operator import add
from typing import Any

from llm_log_exporter.aggregate.periods import zone_name
from llm_log_exporter.schema import LABEL_NAME

# The summed values, in record order (``daily`` records start with them).
COUNTS = ("requests", "failed", "input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens",
          "reasoning_tokens", "cost_usd", "requests_without_cost")
REQUESTS, FAILED, INPUT, OUTPUT, CACHED, CACHE_WRITE, REASONING, COST, NO_COST = range(len(COUNTS))
DIMENSIONS = {"model": "model", "tenant": "tenant_id", "provider": "provider"}
KEY_INDEX = {"tenant": 0, "provider": 1, "model": 2}  # position in a (tenant_id, provider, model) label set
SORTS = ("cost", "requests", "failed", "tokens", "p95", "name")
TOTAL = "total"
OTHER_ROW = "(other)"


def quantile(ordered: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (NumPy's default); None for no data."""
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def bucket_quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """Prometheus' ``histogram_quantile`` over per-bucket (not cumulative) ``counts``; the last is +Inf."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0.0
    for i, count in enumerate(counts):
        if seen + count >= rank and count:
            if i == len(bounds):  # the +Inf bucket: the highest finite bound, as Prometheus answers
                return bounds[-1] if bounds else None
            lower = bounds[i - 1] if i else 0.0
            return lower + (bounds[i] - lower) * ((rank - seen) / count)
        seen += count
    return bounds[-1] if bounds else None


def window_of(start: float | None, end: float | None, zone: tzinfo) -> dict[str, str | None]:
    """A document's window: its bounds as RFC 3339 times in ``zone`` (None when open) and the zone's name."""

    def moment(ts: float | None) -> str | None:
        return None if ts is None else datetime.fromtimestamp(ts, tz=zone).isoformat()

    return {"start": moment(start), "end": moment(end), "tz": zone_name(zone)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


class Group:
    """The sums of one row; percentiles from every duration (``exact``) or from bucket counts."""

    __slots__ = ("bounds", "buckets", "counts", "durations")

    def __init__(self, bounds: Sequence[float] | None = None) -> None:
        self.counts = [0.0] * len(COUNTS)
        self.bounds = bounds
        self.durations = array("d") if bounds is None else None
        self.buckets = None if bounds is None else [0] * (len(bounds) + 1)

    def add_request(self, status: str, prompt: int, completion: int, cached: int, cache_write: int,
                    reasoning: int, cost: float | None, duration: float | None) -> None:
        c = self.counts
        c[REQUESTS] += 1
        if status != "success":
            c[FAILED] += 1
        c[INPUT] += prompt
        c[OUTPUT] += completion
        c[CACHED] += cached
        c[CACHE_WRITE] += cache_write
        c[REASONING] += reasoning
        if cost is None:
            c[NO_COST] += 1
        else:
            c[COST] += cost
        if duration is not None:
            if self.durations is not None:
                self.durations.append(duration)
            else:
                self.buckets[bisect_left(self.bounds, duration)] += 1  # type: ignore[index,arg-type]

    def add_counts(self, counts: Sequence[float], buckets: Sequence[int] = ()) -> None:
        """Add a record's sums (its first ``len(COUNTS)`` values) and, for a bucket group, its bucket counts."""
        self.counts = list(map(add, self.counts, counts))  # map stops at the shorter: counts may be a whole record
        if self.buckets is not None and buckets:
            self.buckets = list(map(add, self.buckets, buckets))

    def merge(self, other: Group) -> None:
        self.add_counts(other.counts, other.buckets or ())
        if self.durations is not None and other.durations is not None:
            self.durations.extend(other.durations)

    @property
    def tokens(self) -> float:
        return self.counts[INPUT] + self.counts[OUTPUT]

    def percentiles(self) -> tuple[float | None, float | None]:
        if self.durations is not None:
            ordered = sorted(self.durations)
            return quantile(ordered, 0.5), quantile(ordered, 0.95)
        assert self.bounds is not None and self.buckets is not None
        return bucket_quantile(0.5, self.bounds, self.buckets), bucket_quantile(0.95, self.bounds, self.buckets)

    def row(self) -> dict[str, float | int | None]:
        c = self.counts
        requests = int(c[REQUESTS])
        p50, p95 = self.percentiles()
        return {
            "requests": requests,
            "failed": int(c[FAILED]),
            "failure_rate": round(c[FAILED] / requests, 6) if requests else 0.0,
            "input_tokens": int(c[INPUT]),
            "output_tokens": int(c[OUTPUT]),
            "cached_tokens": int(c[CACHED]),
            "cache_write_tokens": int(c[CACHE_WRITE]),
            "reasoning_tokens": int(c[REASONING]),
            "cost_usd": round(c[COST], 10),
            "requests_without_cost": int(c[NO_COST]),
            "p50_duration_s": _round(p50),
            "p95_duration_s": _round(p95),
        }


def check_keys(by: Sequence[str], sort: str = "cost", top: int | None = None, labels: bool = False) -> list[str]:
    """``by`` without repeats; ``ValueError`` naming what is wrong. ``labels``: attribution label names of
    the lines (repo, project, …) are keys too (the report's; the per-day sums keep the dimensions only)."""
    unknown = [b for b in by if b not in DIMENSIONS and not (labels and LABEL_NAME.fullmatch(b))]
    if unknown or not by:
        more = " or attribution label names such as repo" if labels else ""
        raise ValueError(f"by takes {', '.join(DIMENSIONS)}{more} (comma-separated), not {','.join(unknown)!r}")
    if sort not in SORTS:
        raise ValueError(f"sort takes {', '.join(SORTS)}, not {sort!r}")
    if top is not None and top < 1:
        raise ValueError("top must be at least 1")
    return list(dict.fromkeys(by))


def _order(sort: str) -> Callable[[tuple[tuple[str, ...], Group]], tuple]:
    def key(item: tuple[tuple[str, ...], Group]) -> tuple:
        names, group = item
        c = group.counts
        if sort == "name":
            return (names,)
        if sort == "requests":
            primary: tuple = (-c[REQUESTS], -c[COST])
        elif sort == "failed":
            primary = (-c[FAILED], -c[REQUESTS])
        elif sort == "tokens":
            primary = (-group.tokens, -c[COST])
        elif sort == "p95":
            p95 = group.percentiles()[1]
            primary = (p95 is None, -(p95 or 0.0), -c[COST])
        else:
            primary = (-c[COST], -c[REQUESTS])
        return (*primary, names)

    return key


class Summary:
    """Groups by ``by`` (and a period label first, when ``period``); rows sorted, cut to ``top``, totalled."""

    def __init__(self, by: Sequence[str], period: str | None = None, bounds: Sequence[float] | None = None) -> None:
        self.by = list(by)
        self.period = period
        self.bounds = bounds  # None: exact percentiles from every duration
        self.groups: dict[tuple[str, ...], Group] = {}

    @property
    def columns(self) -> list[str]:
        return (["period"] if self.period else []) + self.by

    def group(self, key: tuple[str, ...]) -> Group:
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(self.bounds)
        return group

    def rows(self, sort: str = "cost", top: int | None = None) -> list[tuple[tuple[str, ...], dict, int]]:
        """(key, row, rows folded into it) sorted by period, then ``sort``; beyond ``top`` rows per period
        the rest are summed into one ``(other)`` row; the totals row last."""
        lead = 1 if self.period else 0
        by_period: dict[tuple[str, ...], list[tuple[tuple[str, ...], Group]]] = {}
        for key, group in self.groups.items():
            by_period.setdefault(key[:lead], []).append((key, group))
        out: list[tuple[tuple[str, ...], dict, int]] = []
        order = _order(sort)
        for period in sorted(by_period):
            items = sorted(by_period[period], key=lambda item: order((item[0][lead:], item[1])))
            shown, rest = (items[:top], items[top:]) if top is not None else (items, [])
            out.extend((key, group.row(), 0) for key, group in shown)
            if rest:
                other = Group(self.bounds)
                for _, group in rest:
                    other.merge(group)
                out.append(((*period, OTHER_ROW, *("",) * (len(self.by) - 1)), other.row(), len(rest)))
        total = Group(self.bounds)
        for group in self.groups.values():
            total.merge(group)
        out.append(((TOTAL,) + ("",) * (len(self.columns) - 1), total.row(), 0))
        return out

    def document(self, window: dict[str, Any], sort: str = "cost", top: int | None = None) -> dict[str, Any]:
        """The JSON document of ``report --format json`` and ``/api/v1/usage``."""
        rows = self.rows(sort, top)
        body = []
        for key, row, folded in rows[:-1]:
            item: dict[str, Any] = dict(zip(self.columns, key, strict=True)) | row
            if folded:
                item["folded_rows"] = folded
            body.append(item)
        return {"window": window, "by": self.by, "period": self.period, "sort": sort, "top": top,
                "rows": body, "total": rows[-1][1]}
