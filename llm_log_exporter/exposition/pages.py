"""The daemon's own pages: the landing page at ``/`` and ``/api/v1/usage``, from the per-day sums it keeps.

A solo user asks "what did I spend today, by model?" without running Prometheus: the page answers from
``aggregate.daily`` (today and this month by model and by tenant, 30 days of daily spend as an inline SVG
chart, the files followed and their state). It is one self-contained HTML document: no script, no external
asset (it works offline and under a strict Content-Security-Policy), and it reloads itself every minute.
``/api/v1/usage`` answers the same sums in the JSON shape of ``report --format json`` (``summary``); its
bounds are named windows or dates in the daemon's ``--tz``, since the sums are kept per day.

The server's authentication (``--web.config.file``) runs before any of this.
"""

from __future__ import annotations

import glob
import html
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from operator import add
from urllib.parse import parse_qs

import orjson

from llm_log_exporter import __version__
from llm_log_exporter.aggregate.daily import Daily
from llm_log_exporter.aggregate.periods import PERIODS, day_bound, named_window, period_label, zone_name
from llm_log_exporter.aggregate.store import Store
from llm_log_exporter.aggregate.summary import (
    COST,
    COUNTS,
    KEY_INDEX,
    Summary,
    check_keys,
    window_of,
)
from llm_log_exporter.tailer import Tailer

Reply = tuple[int, bytes, str, dict[str, str]]
HTML = "text/html; charset=utf-8"
JSON = "application/json"
CHART_DAYS = 30
REFRESH_SECONDS = 60
# No script, no external fetch: the page is inert even if a label were to slip through unescaped.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                "Cache-Control": "no-store"}
API_PATH = "/api/v1/usage"
_WIDTH = len(COUNTS)


@dataclass(frozen=True)
class FileRow:
    path: str
    state: str  # following | missing | not_a_file | unreadable | not_open
    lines: int = 0
    invalid: int = 0
    newest_event: float | None = None
    lag_bytes: int | None = None


def file_rows(tailer: Tailer, store: Store, patterns: Sequence[str]) -> list[FileRow]:
    """Each followed file, file seen before, and configured path matching nothing, with its state."""
    lag = tailer.lag_bytes()
    with store.lock:
        stats = {path: (st.lines_parsed + st.lines_skipped + st.lines_invalid, st.lines_invalid, st.last_event_ts)
                 for path, st in store.files.items()}
    paths = dict.fromkeys([*lag, *stats])
    for pattern in patterns:
        if not glob.glob(pattern) if _is_glob(pattern) else pattern not in paths:
            paths[pattern] = None  # named, and nothing of it is followed or was ever read
    rows = []
    for path in paths:
        lines, invalid, newest = stats.get(path, (0, 0, None))
        state = "following" if path in lag else _state(path)
        rows.append(FileRow(path, state, lines, invalid, newest, lag.get(path)))
    return rows


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _state(path: str) -> str:
    if _is_glob(path):
        return "missing"  # a pattern that matches nothing
    try:
        if not os.path.isfile(path):
            return "not_a_file" if os.path.exists(path) else "missing"
    except OSError:
        return "unreadable"
    return "not_open" if os.access(path, os.R_OK) else "unreadable"


class Pages:
    """Answers ``/`` and ``/api/v1/usage`` (``handle``); the per-day sums are copied under the store's lock."""

    def __init__(self, store: Store, daily: Daily, zone: tzinfo, files: Callable[[], list[FileRow]],
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.daily = daily
        self.zone = zone
        self.files = files
        self.clock = clock

    def handle(self, path: str, query: str) -> Reply | None:
        if path == "/":
            return 200, self.landing().encode(), HTML, PAGE_HEADERS
        if path == API_PATH:
            return self.api(query)
        return None

    # ----------------------------------------------------------------- data

    def day_costs(self, first: str, last: str) -> dict[str, float]:
        with self.store.lock:
            return {day: sum(rec[COST] for rec in records.values())
                    for day, records in self.daily.days.items() if first <= day <= last}

    def _kept(self) -> tuple[str | None, str | None, bool]:
        """The first and last day kept, and whether older days were dropped (by --daily-days)."""
        with self.store.lock:
            days = list(self.daily.days)
            dropped = bool(self.daily.dropped or self.daily.evicted)
        return (min(days), max(days), dropped) if days else (None, None, dropped)

    def sums(self, first: str, last: str, period: str | None = None,
             percentiles: bool = True) -> dict[tuple[str, tuple[str, str, str]], list]:
        """The records of the days ``first`` .. ``last`` summed per (period label, label set), in one pass under
        the store's lock: only the sums are new objects (a copy of every record would cost more)."""
        width = None if percentiles else _WIDTH
        out: dict[tuple[str, tuple[str, str, str]], list] = {}
        with self.store.lock:
            for day, records in self.daily.days.items():
                if not first <= day <= last:
                    continue
                lead = _period_of(day, period) if period else ""
                for key, rec in records.items():
                    acc = out.get((lead, key))
                    if acc is None:
                        out[(lead, key)] = rec[:width]
                    else:
                        acc[:] = map(add, acc, rec)  # stops at the shorter: acc keeps its width
        return out

    def summarize(self, sums: dict[tuple[str, tuple[str, str, str]], list], by: Sequence[str],
                  period: str | None = None, percentiles: bool = True) -> Summary:
        summary = Summary(by, period, self.daily.bounds if percentiles else None)
        at = [KEY_INDEX[b] for b in by]
        for (lead, key), rec in sums.items():
            names = tuple(key[i] for i in at)
            summary.group((lead, *names) if period else names).add_counts(rec, rec[_WIDTH:] if percentiles else ())
        return summary

    # ----------------------------------------------------------------- /api/v1/usage

    def api(self, query: str) -> Reply:
        if not self.store.ready.is_set():
            return _json(503, {"error": "initial read in progress; try again when /readyz answers 200"})
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        unknown = sorted(set(params) - {"start", "end", "by", "period", "sort", "top"})
        now = self.clock()
        try:
            if unknown:
                raise ValueError(f"unknown parameter {unknown[0]!r}; this endpoint takes start, end, by, period, "
                                 "sort and top")
            start = day_bound(params.get("start") or "today", "start", now, self.zone)
            end = day_bound(params["end"], "end", now, self.zone) if params.get("end") else None
            if end is not None and start >= end:
                raise ValueError("start must be before end")
            by = check_keys([b.strip() for b in (params.get("by") or "model").split(",") if b.strip()],
                            params.get("sort") or "cost", _top(params.get("top")))
            period = params.get("period") or None
            if period is not None and period not in PERIODS:
                raise ValueError(f"period takes {', '.join(PERIODS)}")
        except ValueError as err:
            return _json(400, {"error": str(err)})
        sort, top = params.get("sort") or "cost", _top(params.get("top"))
        first = period_label(start, "day", self.zone)
        last = period_label(end - 1, "day", self.zone) if end is not None else "9999-12-31"
        summary = self.summarize(self.sums(first, last, period), by, period)
        document = summary.document(window_of(start, end, self.zone), sort, top)
        kept_from, kept_to, dropped = self._kept()
        document["days_kept"] = {"first": kept_from, "last": kept_to}
        document["complete"] = not dropped or kept_from is None or first >= kept_from
        document["percentiles"] = "estimated from the duration histogram buckets (report's are exact)"
        return _json(200, document)

    # ----------------------------------------------------------------- /

    def landing(self) -> str:
        now = self.clock()
        zone = self.zone
        today = period_label(now, "day", zone)
        month_start, _ = named_window("this-month", now, zone)
        month_first = period_label(month_start, "day", zone)
        chart_first = (date.fromisoformat(today) - timedelta(days=CHART_DAYS - 1)).isoformat()
        sections = []
        for title, first, ident in (("Today", today, "today"), ("This month", month_first, "month")):
            sums = self.sums(first, today, percentiles=False)
            by_model = self.summarize(sums, ["model"], percentiles=False).rows()
            tables = [_table(f"{title} by model", by_model, "model"),
                      _table(f"{title} by tenant", self.summarize(sums, ["tenant"], percentiles=False).rows(),
                             "tenant")]
            label = today if ident == "today" else today[:7]
            sections.append(f'<section id="{ident}"><h2>{title} <small>{label}</small></h2>'
                            f"{_cards(ident, by_model[-1][1])}<div class=\"tables\">{''.join(tables)}</div></section>")
        daily_cost = self.day_costs(chart_first, today)
        chart = _chart([(d, daily_cost.get(d, 0.0)) for d in _day_range(chart_first, today)])
        kept_from, _, _ = self._kept()
        ready = self.store.ready.is_set()
        banner = "" if ready else '<p class="warn">Initial read in progress: the numbers are still growing.</p>'
        overflow = self.daily.overflow
        note = (f'<p class="warn">{overflow:,} request(s) folded into a day\'s __other__ row '
                f"(--daily-label-sets).</p>" if overflow else "")
        return _PAGE.format(
            refresh=REFRESH_SECONDS,
            version=_e(__version__),
            zone=_e(zone_name(zone)),
            now=_e(time.strftime("%Y-%m-%d %H:%M:%S", _local(now, zone))),
            banner=banner + note,
            sections="".join(sections),
            chart=chart,
            chart_days=CHART_DAYS,
            kept=_e(kept_from or "no data yet"),
            files=_files(self.files(), now),
            api=API_PATH,
        )


# ----------------------------------------------------------------------------- helpers


def _top(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"top takes a whole number, not {text!r}") from None


def _json(code: int, data: object) -> Reply:
    return code, orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n", JSON, {"Cache-Control": "no-store"}


def _period_of(day: str, period: str | None) -> str:
    if period == "month":
        return day[:7]
    if period == "week":
        year, week, _ = date.fromisoformat(day).isocalendar()
        return f"{year}-W{week:02d}"
    return day


def _day_range(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def _local(ts: float, zone: tzinfo) -> time.struct_time:
    return datetime.fromtimestamp(ts, tz=zone).timetuple()


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def money(value: float) -> str:
    """USD as the page shows it: cents from one dollar up, four decimals below (LLM calls cost fractions)."""
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def _cards(ident: str, row: dict) -> str:
    failed, requests = row["failed"], row["requests"]
    ratio = f" ({failed / requests:.1%})" if requests else ""
    tokens = row["input_tokens"] + row["output_tokens"]
    cards = [
        ("spend", "Spend", money(row["cost_usd"]),
         f"{row['requests_without_cost']:,} call(s) with unknown cost" if row["requests_without_cost"] else ""),
        ("requests", "Requests", f"{requests:,}", ""),
        ("failures", "Failures", f"{failed:,}{ratio}", ""),
        ("tokens", "Tokens", f"{tokens:,}",
         f"{row['input_tokens']:,} in ({row['cached_tokens']:,} cached) · {row['output_tokens']:,} out"),
    ]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="label">{label}</div><div class="value" id="{ident}-{name}">{_e(value)}</div>'
        f'<div class="sub">{_e(sub)}</div></div>' for name, label, value, sub in cards) + "</div>"


def _table(title: str, rows: list[tuple[tuple[str, ...], dict, int]], column: str) -> str:
    body = []
    for key, row, _ in rows[:-1]:
        body.append(
            f"<tr><td>{_e(key[0] or '(none)')}</td><td>{row['requests']:,}</td><td>{row['failed']:,}</td>"
            f"<td>{row['input_tokens']:,}</td><td>{row['output_tokens']:,}</td><td>{money(row['cost_usd'])}</td></tr>")
    if not body:
        body.append('<tr><td colspan="6" class="empty">no requests</td></tr>')
    return (f'<table><caption>{_e(title)}</caption><thead><tr><th>{_e(column)}</th><th>requests</th>'
            f"<th>failed</th><th>input tok</th><th>output tok</th><th>cost</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _chart(points: list[tuple[str, float]]) -> str:
    """Daily spend as bars in an inline SVG (no script, no external asset)."""
    width, height, left, bottom, top_pad = 900, 220, 56, 28, 12
    plot_w, plot_h = width - left - 8, height - bottom - top_pad
    peak = max((cost for _, cost in points), default=0.0)
    scale = peak if peak > 0 else 1.0
    slot = plot_w / max(len(points), 1)
    parts = [f'<svg id="spend-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="Daily spend, last {len(points)} days">',
             f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - 8}" y2="{top_pad + plot_h}" class="axis"/>',
             f'<text x="{left - 6}" y="{top_pad + 4}" class="ylab">{_e(money(peak))}</text>',
             f'<text x="{left - 6}" y="{top_pad + plot_h}" class="ylab">$0</text>']
    for i, (day, cost) in enumerate(points):
        h = plot_h * cost / scale
        x = left + i * slot + slot * 0.15
        y = top_pad + plot_h - h
        parts.append(f'<rect class="bar" data-day="{day}" data-cost="{cost:.10g}" x="{x:.1f}" y="{y:.1f}" '
                     f'width="{slot * 0.7:.1f}" height="{h:.1f}"><title>{day}: {_e(money(cost))}</title></rect>')
        if i % 5 == 0 or i == len(points) - 1:
            parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{height - 8}" class="xlab">{day[5:]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _age(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    seconds = max(0.0, now - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def _files(rows: list[FileRow], now: float) -> str:
    if not rows:
        return '<p class="empty">No file configured.</p>'
    body = "".join(
        f'<tr class="state-{_e(r.state)}"><td>{_e(r.path)}</td><td>{_e(r.state.replace("_", " "))}</td>'
        f"<td>{r.lines:,}</td><td>{r.invalid:,}</td><td>{_e(_age(r.newest_event, now))}</td>"
        f"<td>{'-' if r.lag_bytes is None else f'{r.lag_bytes:,}'}</td></tr>" for r in rows)
    return ('<table class="files"><thead><tr><th>file</th><th>state</th><th>lines read</th><th>invalid</th>'
            f"<th>newest event</th><th>unread bytes</th></tr></thead><tbody>{body}</tbody></table>")


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{refresh}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>llm-log-exporter: LLM usage</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem auto;max-width:1100px;color:#1d2330;
background:#fafbfc;padding:0 1rem}}
h1{{font-size:1.4rem;margin:0}} h2{{font-size:1.15rem;margin:1.6rem 0 .6rem}} h2 small{{color:#687083;font-weight:400}}
header p,footer{{color:#687083;font-size:.9rem}} a{{color:#2458c6}}
.cards{{display:flex;gap:.8rem;flex-wrap:wrap}}
.card{{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:.7rem 1rem;min-width:180px;flex:1}}
.card .label{{color:#687083;font-size:.85rem}} .card .value{{font-size:1.6rem;font-weight:600}}
.card .sub{{color:#687083;font-size:.8rem;min-height:1em}}
.tables{{display:flex;gap:1rem;flex-wrap:wrap;margin-top:.8rem}} .tables table{{flex:1;min-width:420px}}
table{{border-collapse:collapse;background:#fff;border:1px solid #dde1e8;font-size:.88rem;width:100%}}
caption{{text-align:left;font-weight:600;padding:.3rem 0}}
th,td{{padding:.3rem .6rem;border-bottom:1px solid #eef0f4;text-align:right}}
th:first-child,td:first-child{{text-align:left;word-break:break-all}} td.empty{{text-align:center;color:#687083}}
.files th:nth-child(2),.files td:nth-child(2){{text-align:left}}
svg{{width:100%;height:auto;background:#fff;border:1px solid #dde1e8;border-radius:6px}}
.bar{{fill:#3b73d9}} .axis{{stroke:#9aa2b1}} .ylab{{font-size:11px;fill:#687083;text-anchor:end}}
.xlab{{font-size:11px;fill:#687083;text-anchor:middle}}
.warn{{background:#fff4d6;border:1px solid #f0d48a;padding:.5rem .8rem;border-radius:6px}}
.state-missing td:nth-child(2),.state-unreadable td:nth-child(2),.state-not_a_file td:nth-child(2){{color:#b3261e;
font-weight:600}}
</style></head>
<body>
<header><h1>llm-log-exporter</h1>
<p>LLM usage read from the files below, summed per day in <b>{zone}</b> (--tz). As of {now}; this page reloads
every {refresh} s. <a href="/metrics">/metrics</a> · <a href="{api}?start=today&amp;by=model">{api}</a> ·
<a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a></p></header>
{banner}
{sections}
<section id="daily"><h2>Daily spend, last {chart_days} days</h2>{chart}</section>
<section id="files"><h2>Files</h2>{files}</section>
<footer><p>llm-log-exporter {version} · per-day sums kept since {kept} · the same numbers as
<code>llm-log-exporter report --start today --tz {zone}</code></p></footer>
</body></html>
"""
