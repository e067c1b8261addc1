"""OpenMetrics text with timestamps, for ``promtool tsdb create-blocks-from openmetrics``.

Input: snapshots of prometheus-client metric families (what the live collector yields) at
increasing times. Output: one exposition in which, as the format requires, families are not
interleaved, a series' points are contiguous and in increasing time, and it ends with ``# EOF``.

Snapshots arrive time-major but the file is series-major, so this is a transpose: points are kept
in memory up to ``run_bytes``, then spilled as a sorted run to a temporary file; ``close`` merges
the runs. Memory stays bounded whatever the length of history; disk use is about the output size.
"""

from __future__ import annotations

import heapq
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from prometheus_client.core import Metric

from llm_log_exporter.exposition.text import escape_label_value

DEFAULT_RUN_BYTES = 256 << 20
_GROUPED_LABELS = frozenset({"le", "quantile"})  # vary within one point of a histogram / summary
_ZERO_TYPES = frozenset({"counter", "histogram"})


def number(value: float) -> str:
    if type(value) is int:
        return str(value)
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


@dataclass
class WriterStats:
    samples: int = 0
    points: int = 0
    series: int = 0
    runs: int = 0
    first_ts: int | None = None
    last_ts: int | None = None


class _Layout:
    """The samples of a family in the previous snapshot: per position its name, labels, rendered
    prefix, last value and text, and the series id where a point starts (-1 inside a point)."""

    __slots__ = ("bodies", "keys", "labels", "names", "prefixes", "starts", "values")

    def __init__(self) -> None:
        self.names: list[str] = []
        self.labels: list[dict[str, str]] = []
        self.prefixes: list[str] = []
        self.keys: list[tuple] = []  # the labels that identify the point (series) a sample belongs to
        self.values: list[float] = []
        self.bodies: list[str] = []
        self.starts: list[int] = []

    def append(self, name: str, labels: dict[str, str], prefix: str, key: tuple, value: float, body: str) -> None:
        self.names.append(name)
        self.labels.append(labels)
        self.prefixes.append(prefix)
        self.keys.append(key)
        self.values.append(value)
        self.bodies.append(body)
        self.starts.append(-1)


class OpenMetricsWriter:
    """Collects snapshots with ``add``/``repeat`` and writes the exposition on ``close``."""

    def __init__(
        self,
        out: BinaryIO,
        const_labels: dict[str, str] | None = None,
        run_bytes: int = DEFAULT_RUN_BYTES,
        spool_dir: str | None = None,
    ) -> None:
        self.out = out
        self.const = "".join(f',{k}="{escape_label_value(v)}"' for k, v in (const_labels or {}).items())
        self.run_bytes = run_bytes
        self.spool_dir = spool_dir
        self.stats = WriterStats()
        self._family_index: dict[str, int] = {}
        self._headers: list[bytes] = []
        self._family_types: list[str] = []
        self._metric_ids: dict[tuple, int] = {}  # (family index, point label key) → id, in first-seen order
        self._metric_family: list[int] = []
        self._prefixes: dict[tuple, str] = {}  # (sample name, labels) → 'name{labels} '
        self._run: dict[int, list[str]] = {}
        self._run_size = 0
        self._runs: list[str] = []
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._last: list[tuple[int, list[str]]] = []
        self._layouts: dict[str, _Layout] = {}

    # --- snapshots -------------------------------------------------------------------------------

    def add(self, families: Iterable[Metric], ts: int, zero_ts: int | None = None) -> None:
        """A snapshot at ``ts``. New counter and histogram series also get a 0 point at ``zero_ts``
        (the previous sample time), so ``increase()`` over the backfill counts their first events."""
        snapshot: list[tuple[int, list[str]]] = []
        new: list[tuple[int, list[str]]] = []
        for family in families:
            layout = self._layouts.get(family.name)
            if layout is None or not self._same_layout(family, layout, snapshot):
                self._layouts[family.name] = self._full(family, snapshot, new, zero_ts is not None, layout)
        if zero_ts is not None and new:
            if not zero_ts < ts:
                raise ValueError(f"zero points at {zero_ts} must come before the snapshot at {ts}")
            self._emit(new, zero_ts, check=False)
        self._emit(snapshot, ts)
        self._last = snapshot

    @staticmethod
    def _same_layout(family: Metric, layout: _Layout, snapshot: list[tuple[int, list[str]]]) -> bool:
        """The fast path: the family has the very series of the previous snapshot, in the same order
        (the usual case), so labels are compared, not rendered, and unchanged values reuse their text."""
        samples = family.samples
        if len(samples) != len(layout.names):
            return False
        names, labels, prefixes, starts = layout.names, layout.labels, layout.prefixes, layout.starts
        values, bodies = layout.values, layout.bodies
        points: list[tuple[int, list[str]]] = []
        current: list[str] = []
        for i, sample in enumerate(samples):
            if sample.labels != labels[i] or sample.name != names[i]:
                return False
            value = sample.value
            if value == values[i]:
                body = bodies[i]
            else:
                body = bodies[i] = prefixes[i] + number(value)
                values[i] = value
            metric = starts[i]
            if metric >= 0:
                current = []
                points.append((metric, current))
            current.append(body)
        snapshot.extend(points)
        return True

    def _full(
        self,
        family: Metric,
        snapshot: list[tuple[int, list[str]]],
        new: list[tuple[int, list[str]]],
        zero: bool,
        old: _Layout | None,
    ) -> _Layout:
        """Group samples into points, register new series, and remember the layout. Samples that
        match the old layout in order (everything but the new series, usually) reuse its work."""
        findex = self._family_index.get(family.name)
        if findex is None:
            findex = self._register(family)
        grouped = family.type not in ("counter", "gauge", "unknown")
        zero = zero and family.type in _ZERO_TYPES
        layout = _Layout()
        key: tuple | None = None
        bodies: list[str] = []
        zeros: list[str] = []
        first = 0
        j = 0
        known = len(old.names) if old is not None else 0
        for sample in family.samples:
            labels, name, value = sample.labels, sample.name, sample.value
            if j < known and labels == old.labels[j] and name == old.names[j]:  # type: ignore[union-attr]
                prefix, point_key = old.prefixes[j], old.keys[j]  # type: ignore[union-attr]
                body = old.bodies[j] if value == old.values[j] else prefix + number(value)  # type: ignore[union-attr]
                j += 1
            else:
                items = tuple(labels.items())
                point_key = tuple(i for i in items if i[0] not in _GROUPED_LABELS) if grouped else items
                prefix = self._prefixes.get((name, items)) or self._prefix(name, items)
                body = prefix + number(value)
            if point_key != key:
                if bodies:
                    layout.starts[first] = self._point(findex, key, bodies, zeros, snapshot, new)
                key, bodies, zeros, first = point_key, [], [], len(layout.names)
            bodies.append(body)
            if zero:
                zeros.append(prefix + "0")
            layout.append(name, labels, prefix, point_key, value, body)
        if bodies:
            layout.starts[first] = self._point(findex, key, bodies, zeros, snapshot, new)
        return layout

    def repeat(self, ts: int) -> None:
        """A snapshot at ``ts`` equal to the previous one (no event since): nothing is recomputed."""
        self._emit(self._last, ts)

    def _point(
        self,
        findex: int,
        key: tuple | None,
        bodies: list[str],
        zeros: list[str],
        snapshot: list[tuple[int, list[str]]],
        new: list[tuple[int, list[str]]],
    ) -> int:
        metric = self._metric_ids.get((findex, key))
        if metric is None:
            metric = self._metric_ids[(findex, key)] = len(self._metric_family)
            self._metric_family.append(findex)
            self.stats.series += len(bodies)
            if zeros:
                new.append((metric, zeros))
        snapshot.append((metric, bodies))
        return metric

    def _emit(self, points: list[tuple[int, list[str]]], ts: int, check: bool = True) -> None:
        stats = self.stats
        if check and stats.last_ts is not None and ts <= stats.last_ts:
            raise ValueError(f"snapshot at {ts} is not after the previous one at {stats.last_ts}")
        if stats.first_ts is None or ts < stats.first_ts:
            stats.first_ts = ts
        if stats.last_ts is None or ts > stats.last_ts:
            stats.last_ts = ts
        suffix = f" {ts}\n"
        join = suffix.join
        run = self._run
        size = 0
        samples = 0
        for metric, bodies in points:
            text = join(bodies) + suffix
            size += len(text) + 64
            samples += len(bodies)
            chunks = run.get(metric)
            if chunks is None:
                run[metric] = [text]
            else:
                chunks.append(text)
        stats.samples += samples
        stats.points += len(points)
        self._run_size += size
        if self._run_size >= self.run_bytes:
            self._spill()

    def _register(self, family: Metric) -> int:
        index = self._family_index[family.name] = len(self._headers)
        head = f"# TYPE {family.name} {family.type}\n"
        if family.unit:
            head += f"# UNIT {family.name} {family.unit}\n"
        if family.documentation:
            head += f"# HELP {family.name} {escape_label_value(family.documentation)}\n"
        self._headers.append(head.encode())
        self._family_types.append(family.type)
        return index

    def _prefix(self, name: str, items: tuple) -> str:
        labels = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in items) + self.const
        if labels.startswith(","):
            labels = labels[1:]
        prefix = f"{name}{{{labels}}} " if labels else f"{name} "
        self._prefixes[(name, items)] = prefix
        return prefix

    # --- output ----------------------------------------------------------------------------------

    def _ordered(self) -> list[int]:
        family = self._metric_family
        return sorted(self._run, key=lambda m: (family[m], m))

    def _spill(self) -> None:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="llm-replay-", dir=self.spool_dir)
        path = os.path.join(self._tmp.name, f"run-{len(self._runs):05d}")
        family = self._metric_family
        with open(path, "wb", buffering=1 << 20) as f:
            for metric in self._ordered():
                data = "".join(self._run[metric]).encode()
                f.write(b"%d %d %d\n" % (family[metric], metric, len(data)))
                f.write(data)
        self._runs.append(path)
        self.stats.runs += 1
        self._run = {}
        self._run_size = 0

    @staticmethod
    def _read_run(path: str, order: int) -> Iterator[tuple[int, int, int, bytes]]:
        with open(path, "rb", buffering=1 << 20) as f:
            while header := f.readline():
                findex, metric, size = map(int, header.split())
                yield findex, metric, order, f.read(size)

    def close(self) -> WriterStats:
        """Write everything out (merging spilled runs) and end with ``# EOF``."""
        write = self.out.write
        current = -1
        try:
            if not self._runs:
                family = self._metric_family
                for metric in self._ordered():
                    if family[metric] != current:
                        current = family[metric]
                        write(self._headers[current])
                    write("".join(self._run[metric]).encode())
            else:
                if self._run:
                    self._spill()
                runs = [self._read_run(path, order) for order, path in enumerate(self._runs)]
                for findex, _, _, data in heapq.merge(*runs):
                    if findex != current:
                        current = findex
                        write(self._headers[current])
                    write(data)
            write(b"# EOF\n")
        finally:
            self._run = {}
            if self._tmp is not None:
                self._tmp.cleanup()
        return self.stats
