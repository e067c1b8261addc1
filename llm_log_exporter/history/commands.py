"""The ``replay`` and ``report`` commands: inputs, the estimate and disk check, output file or TSDB
blocks, signals, progress and the closing summary around the engines in ``replay.py`` and
``report.py``. The CLI builds the counting (store, ingestor, collector) the way it builds the daemon's
and hands it in."""

from __future__ import annotations

import contextlib
import gc
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import BinaryIO

from llm_log_exporter.aggregate.budgets import Budget
from llm_log_exporter.aggregate.calls import settle
from llm_log_exporter.aggregate.ingest import Ingestor
from llm_log_exporter.aggregate.periods import UTC
from llm_log_exporter.aggregate.store import Store
from llm_log_exporter.aggregate.summary import window_of
from llm_log_exporter.aggregate.usage import Usage
from llm_log_exporter.exposition.collector import FamilyCollector
from llm_log_exporter.exposition.heap import HeapFreezer
from llm_log_exporter.files import atomic_output, is_special
from llm_log_exporter.history import estimate as est
from llm_log_exporter.history.backfill import BLOCK_SECONDS
from llm_log_exporter.history.progress import Progress
from llm_log_exporter.history.replay import ReplayOptions, ReplayResult, iso, replay, tick_of
from llm_log_exporter.history.report import BudgetReport, Report, render
from llm_log_exporter.history.sources import STDIN, Source, expand
from llm_log_exporter.history.timeline import Timeline
from llm_log_exporter.history.tsdb import TsdbBuilder, TsdbStats

RETENTION_DEFAULT_DAYS = 15  # Prometheus' --storage.tsdb.retention.time default


class Refused(RuntimeError):
    """The backfill would not fit the disk (``--force`` goes on anyway)."""


class Stopped(BaseException):
    """SIGTERM (or SIGINT) arrived: unwind, so every temporary file is removed on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT raise ``Stopped`` in the main thread while the block runs."""

    def handler(signum: int, frame: object) -> None:
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def _output(path: str) -> Iterator[BinaryIO]:
    """stdout, or a file that takes ``path``'s place only once complete (no half backfill); devices
    and FIFOs (``/dev/null``) are written to directly, never replaced (``files.atomic_output``)."""
    if path == STDIN:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with atomic_output(path) as out:
        yield out


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")


def _invalid_summary(store: Store) -> str | None:
    total = 0
    reasons: dict[str, int] = {}
    for stats in store.files.values():
        for reason, count in stats.invalid.items():
            reasons[reason] = reasons.get(reason, 0) + count
            total += count
    if not total:
        return None
    detail = ", ".join(f"{reason} {count:,}" for reason, count in sorted(reasons.items()))
    return f"{total:,} invalid line(s) skipped ({detail}); the first of each burst is logged above with file and line"


def sources_of(inputs: Sequence[str], quiet: bool = False) -> list[Source]:
    """The inputs, saying once which files of the directories were left out by their name."""
    skipped: list[str] = []
    sources = expand(inputs, skipped)
    if skipped:
        shown = ", ".join(os.path.basename(p) for p in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        _say(f"note: {len(skipped)} file(s) in the input directories are not usage logs by their suffix and were "
             f"skipped ({shown}); name a file on the command line to read it anyway")
    return sources


@dataclass
class ReplayTarget:
    """Where a replay goes: ``-o PATH`` (a file, a device, ``-``) or ``--tsdb DATA_DIR``."""

    output: str | None = None
    tsdb: str | None = None
    jobs: int = 2
    force: bool = False


def plan(sources: Sequence[Source], ingestor: Ingestor, usage: Usage, collector: FamilyCollector,
         options: ReplayOptions, step: int | None, target: ReplayTarget) -> tuple[int, est.Estimate | None,
                                                                                  est.Survey]:
    """The step to use, the estimate (None for stdin) and the disk check; raises ``Refused``."""
    estimator = est.Estimator(ingestor.parse, usage, collector, options.labels)
    survey = estimator.read(sources)
    if not survey.complete:
        return step or est.auto_step(None, options.lookback), None, survey
    chosen = step or est.auto_step(_span(survey, options), options.lookback)
    tick = tick_of(chosen, options.lookback)
    period = tick * (options.lookback // tick)
    estimate = est.estimate(estimator, chosen, options.lookback, period, tick, options.start, _end(options),
                            target.jobs if target.tsdb else None)
    needs: dict[str, int] = {}
    spool = options.spool_dir or _tmpdir()
    if target.tsdb:
        needs[target.tsdb] = estimate.block_bytes
        needs[spool] = estimate.window_bytes * (target.jobs + 2)
    else:
        assert target.output is not None
        if target.output != STDIN and not is_special(target.output):
            needs[os.path.dirname(os.path.abspath(target.output))] = estimate.bytes
        if estimate.window_bytes > options.run_bytes or estimate.bytes > options.run_bytes:
            needs[spool] = needs.get(spool, 0) + estimate.bytes
    problems = est.disk_problems(needs)
    if problems and not target.force:
        raise Refused("not enough free disk for this backfill: " + "; ".join(problems) + ". Free space, point "
                      "--spool-dir elsewhere, write blocks with --tsdb (spooled a window at a time), raise --lookback "
                      "if your Prometheus runs with a longer --query.lookback-delta, or pass --force to go on.")
    return chosen, estimate, survey


def _tmpdir() -> str:
    import tempfile

    return tempfile.gettempdir()


def _span(survey: est.Survey, options: ReplayOptions) -> float | None:
    first, last = survey.first_ts, survey.last_ts
    if first is None or last is None:
        return None
    if options.start is not None:
        first = max(first, options.start)
    end = _end(options)
    if end is not None:
        last = end
    return max(0.0, last - first)


def _end(options: ReplayOptions) -> float | None:
    if options.end is not None:
        return min(options.end, time.time())
    return time.time() if options.until_now else None


def describe(estimate: est.Estimate, target: ReplayTarget) -> str:
    where = (f"TSDB blocks in {target.tsdb} (~{est.size(estimate.block_bytes)}, spooled "
             f"{estimate.window // 3600} h at a time)"
             if target.tsdb else f"~{est.size(estimate.bytes)} of OpenMetrics")
    return (f"estimate: {estimate.series:,} series, ~{estimate.samples:,} samples, {where}, "
            f"step {estimate.step} s, about {est.clock(estimate.seconds)}")


def run_replay(
    inputs: Sequence[str], target: ReplayTarget, store: Store, ingestor: Ingestor, collector: FamilyCollector,
    max_line_bytes: int, options: ReplayOptions, step: int | None, quiet: bool = False,
    scratch_usage: Callable[[], Usage] | None = None,
) -> ReplayResult:
    """The whole replay command: estimate, refuse or go, write (file or blocks), summarise.

    ``step`` None picks the default for the history's span. ``scratch_usage`` builds the throwaway
    aggregation the estimate counts series with (the same options as ``store.usage``)."""
    with stop_on_signals():
        sources = sources_of(inputs, quiet)
        scratch = scratch_usage() if scratch_usage is not None else Usage()
        chosen, estimate, survey = plan(sources, ingestor, scratch, collector, options, step, target)
        options.step = chosen
        if not quiet:
            if estimate is not None:
                _say(describe(estimate, target))
            else:
                _say(f"no estimate for stdin; step {chosen} s")
        span = (survey.first_ts, survey.last_ts) if survey.first_ts is not None and survey.last_ts is not None \
            else None
        total = None if any(s.size is None for s in sources) else sum(s.size or 0 for s in sources)
        progress = Progress(sys.stderr, total, enabled=False if quiet else None, span=span)
        blocks: TsdbStats | None = None
        heap = HeapFreezer()  # each step's samples are frozen out of the collector's reach, as a scrape's
        try:
            if target.tsdb:
                window = estimate.window if estimate is not None else BLOCK_SECONDS
                builder = TsdbBuilder(target.tsdb, target.jobs, options.spool_dir, window=window)
                try:
                    result = replay(store, ingestor, collector, sources, builder, options, max_line_bytes, progress,
                                    after_step=heap.after_burst)
                    blocks = builder.finish()
                finally:
                    builder.abort()
            else:
                assert target.output is not None
                with _output(target.output) as out:
                    result = replay(store, ingestor, collector, sources, out, options, max_line_bytes, progress,
                                    after_step=heap.after_burst)
        finally:
            progress.finish()
            gc.unfreeze()  # the caller's heap as it was (tests replay in-process)
    for warning in result.warnings:
        _say(f"warning: {warning}")
    if not quiet:
        _say(_replay_summary(result, target, options, blocks))
    return result


def _retention(first_ts: int) -> str | None:
    days = math.ceil((time.time() - first_ts) / 86400) + 1
    if days <= RETENTION_DEFAULT_DAYS:
        return None
    return (f"Prometheus deletes data older than its retention (15 days by default) when it starts: run it with "
            f"--storage.tsdb.retention.time={days}d or more, or the oldest blocks are gone at once")


def _replay_summary(result: ReplayResult, target: ReplayTarget, options: ReplayOptions,
                    blocks: TsdbStats | None) -> str:
    lines = result.lines
    seconds = max(result.seconds, 1e-9)
    files = result.timeline.files
    out = [
        f"read {lines:,} lines from {files} input(s) in {result.seconds:.2f} s ({lines / seconds:,.0f} lines/s): "
        f"{result.applied:,} events replayed"
        + (f", {result.timeline.without_ts:,} without ts placed at a borrowed time" if result.timeline.without_ts
           else "")
        + (f", {result.after_end:,} at or after --end left out" if result.after_end else "")
    ]
    invalid = _invalid_summary(result.store)
    if invalid:
        out.append(invalid)
    writer = result.writer
    if not writer.samples:
        return "\n".join(out)
    span = f"{iso(writer.first_ts)} .. {iso(writer.last_ts)}, step {options.step} s"  # type: ignore[arg-type]
    if blocks is not None:
        out.append(f"wrote {len(blocks.blocks)} block(s) into {target.tsdb}: {writer.samples:,} samples of "
                   f"{writer.series:,} series, {span} ({writer.windows} window(s) of {blocks.window // 3600} h through "
                   "promtool)")
        out.append("next: restart Prometheus on that data directory (or move the blocks into its "
                   "--storage.tsdb.path) and check with `report` (docs/replay.md)")
    else:
        name = "stdout" if target.output == STDIN else target.output
        out.append(f"wrote {name}: {writer.samples:,} samples of {writer.series:,} series, {span}")
        if target.output != STDIN:
            out.append(f"next: promtool tsdb create-blocks-from openmetrics {target.output} DATA_DIR "
                       "(or let replay do it: --tsdb DATA_DIR)")
    retention = _retention(writer.first_ts)  # type: ignore[arg-type]
    if retention:
        out.append(retention)
    return "\n".join(out)


def run_report(
    inputs: Sequence[str],
    ingestor: Ingestor,
    by: Sequence[str],
    period: str | None,
    fmt: str,
    start: float | None,
    end: float | None,
    max_line_bytes: int = 1 << 20,
    zone: tzinfo = UTC,
    sort: str = "cost",
    top: int | None = None,
    budgets: tuple[dict[str, Budget], Budget | None] | None = None,
    now: float | None = None,
) -> str:
    """The report of ``inputs``; ``ingestor`` parses and prices lines exactly as the daemon does. With
    ``budgets`` (tenants, default), each tenant's spend in its budget period holding the window's end (or
    now) is shown against its limit."""
    report = Report(by, period, start, end, zone, sort, top)
    if budgets is not None:
        at = (end - 1e-6) if end is not None else (time.time() if now is None else now)
        report.budgets = BudgetReport(*budgets, at=at, zone=zone)
    sources = sources_of(inputs)
    store = ingestor.store
    timeline = Timeline(sources, ingestor, max_line_bytes=max_line_bytes)
    report.feed(settle(timeline, store.usage.calls.window))  # one request per call of LiteLLM payloads
    invalid = _invalid_summary(store)
    if invalid:
        _say(f"note: {invalid}")
    return render(report, fmt, window_of(start, end, zone))
