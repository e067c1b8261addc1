"""Before a replay writes anything: how big will the backfill be, how long will it take, does it fit?

A backfill's size is set by its series and its time span far more than by its lines: every series
has a sample at least every lookback period (5 min), plus one per step in which it changed. So the
estimate reads a *sample* of the inputs — the head and tail of each file and evenly spaced probes
through it (gzip inputs are decompressed once, without parsing) — for the time span, the lines, and
the series those lines create (counted by the replay's own renderer on a scratch aggregation). Reading
stdin cannot be done twice: it gets no estimate.

The figures are approximate (series first seen late in a long file can be missed by the probes); the
disk check compares them with the free space of the output's and the spool's file systems and refuses
a backfill that would not fit, unless ``--force``.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from llm_log_exporter.aggregate.usage import Usage
from llm_log_exporter.events import InvalidLine
from llm_log_exporter.exposition.collector import FamilyCollector
from llm_log_exporter.history.backfill import BLOCK_RANGES, BLOCK_SECONDS
from llm_log_exporter.history.render import Renderer
from llm_log_exporter.history.sources import GZIP_MAGIC, STDIN, InputError, Source, document_lines, is_document
from llm_log_exporter.parsers import ParseFn, parse_line

PROBE = 64 << 10  # bytes per probe
BUDGET = 4 << 20  # bytes parsed over all inputs (probes spread over them: enough to see the label sets)
FINE_SPAN = 7 * 86400  # histories up to a week get the fine default step
FINE_STEP = 60
# Costs measured on 2 shared vCPUs (benchmarks/bench_backfill.py, bench_replay.py): the time estimate only.
SECONDS_PER_EVENT = 8e-6
SECONDS_PER_SAMPLE = 0.8e-6  # rendering and writing the text: 0.5 µs on months (mostly re-emissions), 1.4 on hours
PROMTOOL_SECONDS_PER_SAMPLE = 3.0e-6  # promtool's CPU per sample at GOGC=400 (tsdb.py), spread over --jobs
BLOCK_BYTES_PER_SAMPLE = 4.0  # 2 h blocks with ~24 samples per series (Prometheus compacts them later)
WINDOW_TEXT_BYTES = 256 << 20  # a --tsdb window's OpenMetrics text: the spool and promtool's memory per job


def auto_step(span: float | None, lookback: int) -> int:
    """The default step: a minute for histories up to a week; beyond, the lookback (5 min), where a
    series has one sample per lookback period however busy it is."""
    if span is None or span <= FINE_SPAN:
        return min(FINE_STEP, lookback)
    return lookback


def window_for(nbytes: int, span: float | None) -> int:
    """The ``--tsdb`` window: the longest of promtool's block ranges (2 h, 6 h, 18 h, 54 h) whose
    OpenMetrics text stays within ``WINDOW_TEXT_BYTES``. promtool costs less per sample on longer
    windows (fewer runs, fewer blocks), while the spool and promtool's memory grow with them."""
    if not span:
        return BLOCK_RANGES[-1] if nbytes <= WINDOW_TEXT_BYTES else BLOCK_SECONDS
    per_second = nbytes / span
    return max((w for w in BLOCK_RANGES if per_second * w <= WINDOW_TEXT_BYTES), default=BLOCK_SECONDS)


@dataclass
class Survey:
    """What the probes found."""

    first_ts: float | None = None
    last_ts: float | None = None
    lines: int = 0  # estimated lines of all inputs
    probed: int = 0  # lines parsed
    events: int = 0  # events among them
    input_bytes: int = 0
    complete: bool = True  # False: stdin is among the inputs (not surveyed)

    def span(self) -> float | None:
        if self.first_ts is None or self.last_ts is None:
            return None
        return self.last_ts - self.first_ts


def _probes(data_size: int, budget: int) -> list[int]:
    """Offsets of the probes into a file of ``data_size`` bytes: head, tail, evenly spaced between."""
    count = max(2, min(budget // PROBE, math.ceil(data_size / PROBE)))
    if data_size <= PROBE * count:
        return [0]
    return sorted({round(i * (data_size - PROBE) / (count - 1)) for i in range(count)})


def _plain_chunks(path: str, budget: int) -> Iterator[tuple[bytes, bool, bool]]:
    """(bytes, starts at a line start, ends at a line end) of each probe of a plain file."""
    size = os.path.getsize(path)
    offsets = _probes(size, budget)
    whole = offsets == [0]  # the file fits in its probes: read all of it
    with open(path, "rb") as f:
        for offset in offsets:
            f.seek(offset)
            data = f.read(size if whole else PROBE)
            yield data, offset == 0, f.tell() >= size


def _gzip_chunks(path: str, budget: int, counter: list[int]) -> Iterator[tuple[bytes, bool, bool]]:
    """Probes of a gzip file: decompressed once, one probe kept every ``stride`` bytes, the last one kept."""
    stride = max(PROBE, os.path.getsize(path) * 4 // max(1, budget // PROBE))
    next_probe = 0
    position = 0
    tail = b""
    with gzip.open(path, "rb") as f:
        try:
            while chunk := f.read(PROBE):
                counter[0] += chunk.count(b"\n")
                if position >= next_probe:
                    yield chunk, position == 0, False
                    next_probe = position + stride
                position += len(chunk)
                tail = chunk
        except (OSError, EOFError):  # a truncated .gz: the replay reports it
            pass
    if tail:
        yield tail, False, True


class Estimator:
    """Probes the inputs through the replay's parser into a scratch aggregation."""

    def __init__(self, parse: ParseFn, usage: Usage, collector: FamilyCollector, labels: dict[str, str]) -> None:
        self.parse = parse
        self.usage = usage
        self.renderer = Renderer(usage, collector, labels)
        self.survey = Survey()

    def _lines(self, lines: Sequence[bytes]) -> None:
        survey = self.survey
        handlers = self.usage.handlers
        first, last = survey.first_ts, survey.last_ts
        for line in lines:
            survey.probed += 1
            try:
                events = parse_line(self.parse, line)
            except InvalidLine:
                continue
            for event in events:
                survey.events += 1
                handlers[type(event)](event)
                ts = event.ts
                if ts is not None:
                    if first is None or ts < first:
                        first = ts
                    if last is None or ts > last:
                        last = ts
        survey.first_ts, survey.last_ts = first, last

    def read(self, sources: Sequence[Source]) -> Survey:
        survey = self.survey
        files = [s for s in sources if s.path != STDIN]
        survey.complete = len(files) == len(sources)
        total = sum(s.size or 0 for s in files) or 1
        for source in files:
            try:
                self._source(source, total)
            except InputError:
                raise
            except OSError as err:
                raise InputError(f"{source.name}: cannot read: {err.strerror or err}") from None
        return survey

    def _source(self, source: Source, total: int) -> None:
        survey = self.survey
        survey.input_bytes += source.size or 0
        budget = max(2 * PROBE, BUDGET * (source.size or 0) // total)
        probed_before, bytes_seen = survey.probed, 0
        counter = [0]
        document = document_lines(source.path) if is_document(source.path) else None
        if document is not None:
            self._lines(document)
            survey.lines += len(document)
            return
        with open(source.path, "rb") as f:
            compressed = f.read(2) == GZIP_MAGIC
        chunks = _gzip_chunks(source.path, budget, counter) if compressed else _plain_chunks(source.path, budget)
        for data, at_start, at_end in chunks:
            lines = data.split(b"\n")
            if not at_start:
                lines = lines[1:]
            if not at_end:
                lines = lines[:-1]
            lines = [line for line in lines if line.strip()]
            bytes_seen += sum(len(line) + 1 for line in lines)
            self._lines(lines)
        probed = survey.probed - probed_before
        if compressed:
            survey.lines += counter[0]
        elif probed:
            survey.lines += round((source.size or 0) / (bytes_seen / probed))


@dataclass
class Estimate:
    step: int
    series: int
    samples: int
    bytes: int
    seconds: float
    block_bytes: int
    window_bytes: int
    span: float | None
    window: int = BLOCK_SECONDS  # the --tsdb window length (window_for)


def estimate(estimator: Estimator, step: int | None, lookback: int, period: int, tick: int,
             start: float | None, end: float | None, tsdb_jobs: int | None) -> Estimate:
    """The backfill's size and time for the surveyed inputs; ``step`` None picks the default."""
    survey = estimator.survey
    first, last = survey.first_ts, survey.last_ts
    if first is not None and start is not None:
        first = max(first, start)
    if end is not None and last is not None:
        last = end
    span = (last - first) if first is not None and last is not None and last >= first else None
    if step is None:
        step = auto_step(span, lookback)
    renderer = estimator.renderer
    changed, _, _ = renderer.changes((), full=True)
    series = sum(point.lines for point in changed)
    line_bytes = (sum(point.size for point in changed) / series) if series else 100.0
    records = max(1, len(estimator.usage.records))
    scale = survey.lines / survey.probed if survey.probed else 0.0
    events = survey.events * scale
    seconds_span = span or 0.0
    floor = series * (seconds_span / period + 1)
    changes = min(events, records * seconds_span / step) * series / records
    samples = int(min(series * (seconds_span / tick + 2), floor + changes))
    nbytes = int(samples * line_bytes)
    seconds = events * SECONDS_PER_EVENT + samples * SECONDS_PER_SAMPLE
    if tsdb_jobs:
        seconds += samples * PROMTOOL_SECONDS_PER_SAMPLE / min(tsdb_jobs, os.cpu_count() or 1)
    window = window_for(nbytes, span)
    window_bytes = nbytes if not span else int(nbytes * min(1.0, window / span))
    return Estimate(step, series, samples, nbytes, seconds, int(samples * BLOCK_BYTES_PER_SAMPLE), window_bytes, span,
                    window)


def _existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def disk_problems(needs: dict[str, int], free: Callable[[str], int] | None = None) -> list[str]:
    """``needs``: directory → bytes it must take; the shortfalls, per file system (needs on one add up)."""
    free = free or (lambda path: shutil.disk_usage(path).free)
    by_device: dict[int, tuple[list[str], int]] = {}
    for directory, nbytes in needs.items():
        existing = _existing(directory)
        device = os.stat(existing).st_dev
        paths, total = by_device.get(device, ([], 0))
        by_device[device] = ([*paths, existing], total + nbytes)
    problems = []
    for paths, nbytes in by_device.values():
        available = free(paths[0])
        if nbytes > available:
            problems.append(f"{' and '.join(sorted(set(paths)))} need about {size(nbytes)}, "
                            f"{size(available)} free")
    return problems


def size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def clock(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
