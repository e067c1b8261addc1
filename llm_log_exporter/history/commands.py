"""The ``replay`` and ``report`` commands: inputs, output file, progress and the closing summary
around the engines in ``replay.py`` and ``report.py``. The CLI builds the counting (store, ingestor,
collector) the way it builds the daemon's and hands it in."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from llm_log_exporter.aggregate.calls import settle
from llm_log_exporter.aggregate.ingest import Ingestor
from llm_log_exporter.aggregate.store import Store
from llm_log_exporter.exposition.collector import FamilyCollector
from llm_log_exporter.files import atomic_output
from llm_log_exporter.history.progress import Progress
from llm_log_exporter.history.replay import ReplayOptions, ReplayResult, iso, replay
from llm_log_exporter.history.report import Report, render
from llm_log_exporter.history.sources import STDIN, Source, expand
from llm_log_exporter.history.timeline import Timeline


def _total(sources: Sequence[Source]) -> int | None:
    return None if any(s.size is None for s in sources) else sum(s.size or 0 for s in sources)


@contextlib.contextmanager
def _output(path: str) -> Iterator[BinaryIO]:
    """stdout, or a file that takes ``path``'s place only once complete (no half backfill)."""
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


def run_replay(
    inputs: Sequence[str], output: str, store: Store, ingestor: Ingestor, collector: FamilyCollector,
    max_line_bytes: int, options: ReplayOptions, quiet: bool = False,
) -> ReplayResult:
    sources = expand(inputs)
    progress = Progress(sys.stderr, _total(sources), enabled=False if quiet else None)
    try:
        with _output(output) as out:
            result = replay(store, ingestor, collector, sources, out, options, max_line_bytes, progress)
    finally:
        progress.finish()
    for warning in result.warnings:
        _say(f"warning: {warning}")
    if not quiet:
        _say(_replay_summary(result, output, options))
    return result


def _replay_summary(result: ReplayResult, output: str, options: ReplayOptions) -> str:
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
    name = "stdout" if output == STDIN else output
    if writer.samples:
        out.append(
            f"wrote {name}: {writer.samples:,} samples of {writer.series:,} series, "
            f"{iso(writer.first_ts)} .. {iso(writer.last_ts)}, step {options.step} s"  # type: ignore[arg-type]
        )
        if output != STDIN:
            out.append(f"next: promtool tsdb create-blocks-from openmetrics {output} DATA_DIR")
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
) -> str:
    """The report of ``inputs``; ``ingestor`` parses and prices lines exactly as the daemon does."""
    report = Report(by, period, start, end)
    sources = expand(inputs)
    store = ingestor.store
    timeline = Timeline(sources, ingestor, max_line_bytes=max_line_bytes)
    report.feed(settle(timeline, store.usage.calls.window))  # one request per call of LiteLLM payloads
    invalid = _invalid_summary(store)
    if invalid:
        _say(f"note: {invalid}")
    window = {"start": iso(start) if start is not None else None, "end": iso(end) if end is not None else None}
    return render(report, fmt, window)
