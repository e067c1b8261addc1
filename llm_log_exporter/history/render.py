"""Backfill samples straight from the aggregation state: each series' label prefix is rendered once,
and a step renders only the values that changed since the step before.

Snapshotting the live collector every step built a prometheus-client ``Sample`` per series line and
rendered it (~6 µs a sample). Here every series, or every histogram point (its buckets, count and sum
at one time), is a ``Point`` that keeps its label prefixes and its value(s) as text; a step that
changes it renders the value(s) once (``entry``), and the writer keeps (entry, time) pairs per point
until it writes them series-major, a whole buffer's lines made by C-level slices and joins
(``Point.text``). Re-emitting an unchanged value is appending the same entry again. What is
backfilled, under which names and labels, follows the family table, as a scrape does:

* record families (``Slots``, ``Keyed`` and ``Histogram`` over the usage records) are rendered per
  record, and a step looks only at the records its events touched (``Usage.record_of``): records
  change through ``request`` events alone; with ``--naming otel`` the OTel records (few: no per-tenant
  fan-out beyond the usage records') are looked at every step, an unchanged histogram costing a compare;
* table and view families (per tenant, per provider: small) are rebuilt with the collector's own
  ``build`` when their table or the views differ from the previous step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate, chain, compress, repeat
from operator import itemgetter, ne
from typing import Any

from prometheus_client.utils import floatToGoString

from llm_log_exporter.aggregate.families import COLLECTION_LABELS, SELF, Family, Histogram, Keyed, Slots, Table, View
from llm_log_exporter.aggregate.usage import INDEX, KEY, OTEL_INDEX, OTEL_KEY, Usage
from llm_log_exporter.events import CallPart, Event, Request
from llm_log_exporter.exposition.collector import FamilyCollector, Snapshot, build
from llm_log_exporter.exposition.text import escape_label_value

_ZERO_TYPES = frozenset({"counter", "histogram"})  # new series of these start from a 0 point


def number(value: float) -> str:
    """A sample value as OpenMetrics text (ints as ints, floats by ``repr``)."""
    if type(value) is int:
        return str(value)
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


MAX_NUMBER_TEXTS = 1 << 18  # bucket counts whose text is kept (~15 MB at most); larger ones are made each time


class Point:
    """One series, or one histogram point (its lines: buckets, count, sum), and what the writer holds of it.

    ``entry`` is its value text as last written (a str; a histogram's, one str per line), ``value`` what
    tells a row's change (its number; a histogram's count; a record's slots are compared by its view).
    The writer's buffer is ``entries`` and ``times`` (``" {ts}\\n"``), one pair per time written; ``text``
    makes their lines.
    """

    __slots__ = ("entries", "entry", "family", "gone", "last", "lines", "order", "prefixes", "size", "times",
                 "value", "zero")

    def __init__(self, family: int, order: int, prefixes: Sequence[str], zero: bool) -> None:
        self.family = family
        self.order = order  # registration order: the order of series within a family in the output
        self.prefixes = tuple(prefixes)
        self.lines = len(prefixes)
        self.zero: str | list[str] | None = (("0" if self.lines == 1 else ["0"] * self.lines) if zero else None)
        self.entry: str | list[str] = ""
        self.value: Any = None
        self.last: int | None = None  # time of the last sample written
        self.gone = False  # no longer shown (a view that dropped the row): not written again
        self.entries: list[str | list[str]] = []  # the writer's current buffer: entries ...
        self.times: list[str] = []  # ... and the time of each
        self.size = sum(map(len, self.prefixes)) + 20 * self.lines  # text bytes of one entry, about

    def text(self) -> str:
        """The buffered samples' lines, in the order written: prefix, value and time per line."""
        count = len(self.entries)
        lines = self.lines
        if lines == 1:
            parts = [self.prefixes[0]] * (3 * count)
            parts[1::3] = self.entries
            parts[2::3] = self.times
        else:
            parts = [""] * (3 * lines * count)
            parts[0::3] = self.prefixes * count
            parts[1::3] = chain.from_iterable(self.entries)
            parts[2::3] = chain.from_iterable(map(repeat, self.times, repeat(lines, count)))
        return "".join(parts)


def backfilled(collector: FamilyCollector) -> list[Family]:
    """The families a backfill holds: usage, without the self-metrics (they describe the replaying
    process, not history)."""
    return [f for f in collector.families if f.owner == "usage" and f.prefix != SELF]


def header(family: Family, exposed: str) -> bytes:
    head = f"# TYPE {exposed} {family.type}\n"
    if family.unit:
        head += f"# UNIT {exposed} {family.unit}\n"
    if family.help:
        head += f"# HELP {exposed} {escape_label_value(family.help)}\n"
    return head.encode()


def _getter(slots: Sequence[int]) -> Callable[[list], tuple]:
    """The values of ``slots`` of a record as one tuple (compared at C level with the ones seen last)."""
    if len(slots) == 1:
        slot = slots[0]
        return lambda record: (record[slot],)
    return itemgetter(*slots) if slots else lambda record: ()


class _RecordView:
    """The points of one record: plain slots, histograms (shown once they hold a value) and keyed rows,
    with the values they were last rendered from."""

    __slots__ = ("counts", "counts_of", "histograms", "keyed", "points", "slots_of", "values")

    def __init__(self, scalars: list[tuple[Point, int]], histograms: list[list[Any]],
                 keyed: list[tuple[int, int, tuple[str, ...], str]]) -> None:
        self.points = tuple(point for point, _ in scalars)
        self.slots_of = _getter([slot for _, slot in scalars])
        self.values: tuple = (None,) * len(scalars)
        self.histograms = histograms  # [point|None, family, at_sum, at_count, at_buckets, prefixes]
        self.counts_of = _getter([entry[3] for entry in histograms])
        self.counts: tuple = (0,) * len(histograms)
        self.keyed = keyed  # (family, slot, key, sample name)


class Renderer:
    """Usage state → changed points, per step. ``changes`` is the only entry point of a replay step."""

    def __init__(self, usage: Usage, collector: FamilyCollector, const_labels: dict[str, str] | None = None) -> None:
        self.usage = usage
        self.families = backfilled(collector)
        namespace = collector.namespace
        self.exposed = [f.exposed(namespace) for f in self.families]
        self.headers = [header(f, name) for f, name in zip(self.families, self.exposed, strict=True)]
        self.const = "".join(f',{k}="{escape_label_value(v)}"' for k, v in (const_labels or {}).items())
        self.points: list[Point] = []
        self._records: dict[str, dict[tuple[str, ...], _RecordView]] = {"usage": {}, "otel": {}}
        self._rows: dict[tuple[int, tuple[str, ...]], Point] = {}  # table, view and keyed rows
        # Per record collection: its families, slot index, where a record keeps its key, its key's labels.
        self._collections = {
            "usage": ([i for i, f in enumerate(self.families) if isinstance(f.read, (Slots, Keyed, Histogram))
                       and f.read.collection == "usage"], INDEX, KEY, usage.key_labels),
            "otel": ([i for i, f in enumerate(self.families) if isinstance(f.read, Histogram)
                      and f.read.collection == "otel"], OTEL_INDEX, OTEL_KEY, usage.otel_key_labels),
        }
        self._table_families: dict[str, list[int]] = {}
        self._view_families: list[int] = []
        for i, family in enumerate(self.families):
            if isinstance(family.read, Table):
                self._table_families.setdefault(family.read.table, []).append(i)
            elif isinstance(family.read, View):
                self._view_families.append(i)
        self._tables: dict[str, dict[tuple[str, ...], list]] = {}
        self._layouts: dict[str, list[tuple]] = {}
        self._views: dict[str, Any] | None = None
        self._numbers: list[str] = []  # str(i) at i, for bucket counts
        self._les = {name: tuple(floatToGoString(b) for b in (*bounds, math.inf)) for name, bounds in
                     usage.bounds.items()}

    # --- registration -----------------------------------------------------------------------------

    def _prefix(self, name: str, names: Sequence[str], values: Sequence[str]) -> str:
        return self._join(name, [self._label_text(names, values)])

    @staticmethod
    def _label_text(names: Sequence[str], values: Sequence[str]) -> str:
        return ",".join(f'{k}="{escape_label_value(v)}"' for k, v in zip(names, values, strict=True))

    def _join(self, name: str, parts: Sequence[str]) -> str:
        """``name{labels} `` from label texts already escaped (a record's key is escaped once for all
        its series)."""
        labels = ",".join(part for part in parts if part) + self.const
        labels = labels.removeprefix(",")
        return f"{name}{{{labels}}} " if labels else f"{name} "

    def _point(self, family: int, prefixes: Sequence[str]) -> Point:
        point = Point(family, len(self.points), prefixes, self.families[family].type in _ZERO_TYPES)
        self.points.append(point)
        return point

    def _sample_name(self, index: int) -> str:
        family = self.families[index]
        return self.exposed[index] + ("_total" if family.type == "counter" else "")

    def _labels(self, family: Family) -> tuple[str, ...]:
        """A family's label names, with the record key's own (``--extra-label`` adds some) in front."""
        collection = getattr(family.read, "collection", "")
        if collection not in self._collections:
            return family.labels
        return (*self._collections[collection][3], *family.labels[len(COLLECTION_LABELS[collection]):])

    def _layout(self, collection: str) -> list[tuple]:
        """What every record of ``collection`` shows, with the label texts that do not depend on its key."""
        layout = self._layouts.get(collection)
        if layout is not None:
            return layout
        layout = []
        indexes, index_of, _, key_names = self._collections[collection]
        for index in indexes:
            family = self.families[index]
            read = family.read
            names = self._labels(family)[len(key_names):]  # the family's own labels, after the key's
            if isinstance(read, Slots):
                name = self._sample_name(index)
                layout.append(("slots", index, [(name, self._label_text(names, (extra,)) if extra else "",
                                                 index_of[slot]) for extra, slot in read.slots]))
            elif isinstance(read, Histogram):
                base = self.exposed[index]
                for extra, name in read.split or (("", read.name),):
                    at = [index_of[f"{name}_{part}"] for part in ("sum", "count", "buckets")]
                    extra_text = self._label_text(names, (extra,)) if extra else ""
                    les = [f'le="{le}"' for le in self._les[read.bounds]]
                    layout.append(("histogram", index, (base, extra_text, at, les)))
            elif isinstance(read, Keyed):
                layout.append(("keyed", index, (index_of[read.slot], self._sample_name(index))))
        self._layouts[collection] = layout
        return layout

    def _record_view(self, collection: str, key: tuple[str, ...]) -> _RecordView:
        scalars: list[tuple[Point, int]] = []
        histograms: list[list[Any]] = []
        keyed: list[tuple[int, int, tuple[str, ...], str]] = []
        key_text = self._label_text(self._collections[collection][3], key)  # escaped once for all its series
        const = self.const
        for kind, index, spec in self._layout(collection):
            if kind == "slots":
                for name, extra_text, at in spec:
                    scalars.append((self._point(index, [self._join(name, [key_text, extra_text])]), at))
            elif kind == "histogram":
                base, extra_text, at, les = spec
                inner = ",".join(part for part in (key_text, extra_text) if part)
                head = f"{base}_bucket{{{inner}{',' if inner else ''}"
                prefixes = [f"{head}{le}{const}}} " for le in les]
                prefixes.append(self._join(base + "_count", [inner]))
                prefixes.append(self._join(base + "_sum", [inner]))
                histograms.append([None, index, *at, prefixes])
            else:
                keyed.append((index, spec[0], key, spec[1]))
        view = self._records[collection][key] = _RecordView(scalars, histograms, keyed)
        return view

    def _row(self, index: int, labels: tuple[str, ...], value: float, changed: list[Point], entries: list[Any],
             new: list[Point]) -> None:
        point = self._rows.get((index, labels))
        if point is None:
            family = self.families[index]
            point = self._rows[(index, labels)] = self._point(
                index, [self._prefix(self._sample_name(index), self._labels(family), labels)])
            new.append(point)
        elif value == point.value and not point.gone:
            return
        point.gone = False
        point.value = value
        changed.append(point)
        entries.append(number(value))

    # --- one step ---------------------------------------------------------------------------------

    def changes(self, events: Iterable[Event], full: bool = False) -> tuple[list[Point], list[Any], list[Point]]:
        """The points whose value differs from their last rendering, after ``events`` were applied
        (``full``: every record, as after a cut by --start), their new entries (in the same order); and the
        new points."""
        changed: list[Point] = []
        entries: list[Any] = []
        new: list[Point] = []
        usage = self.usage
        records: Iterable[list] | None = None
        if not full:
            touched: dict[int, list] = {}
            record_of = usage.record_of
            for event in events:
                if type(event) is Request:
                    record = record_of(event)
                    if record is None:  # a raw key the usage does not cache (very long labels): look at all
                        touched = {}
                        records = None
                        break
                    touched[id(record)] = record
                elif type(event) is CallPart:  # may settle earlier calls of any record: look at all
                    touched = {}
                    records = None
                    break
            else:
                records = touched.values()
        for record in usage.records.values() if records is None else records:
            self._record("usage", record, changed, entries, new)
        if self._collections["otel"][0]:
            for record in usage.otel_records.values():
                self._record("otel", record, changed, entries, new)
        self._small(changed, entries, new)
        return changed, entries, new

    def _record(self, collection: str, record: list, changed: list[Point], entries: list[Any],
                new: list[Point]) -> None:
        key = record[self._collections[collection][2]]
        view = self._records[collection].get(key)
        if view is None:
            view = self._record_view(collection, key)
            new.extend(view.points)
        values = view.slots_of(record)
        if values != view.values:  # record slots are float sums of bounded values: repr is their text
            moved = list(map(ne, values, view.values))
            view.values = values
            changed.extend(compress(view.points, moved))
            entries.extend(map(repr, compress(values, moved)))
        counts = view.counts_of(record)
        if counts != view.counts:
            numbers = self._numbers
            moved = list(map(ne, counts, view.counts))
            view.counts = counts
            for entry, count in zip(compress(view.histograms, moved), compress(counts, moved), strict=True):
                point, index, at_sum, _, at_buckets, prefixes = entry
                if point is None:
                    point = entry[0] = self._point(index, prefixes)
                    new.append(point)
                text_of = numbers.__getitem__ if count < len(numbers) else self._text_of(count)
                texts = list(map(text_of, accumulate(record[at_buckets])))
                texts.append(texts[-1])  # _count is the +Inf bucket
                texts.append(repr(record[at_sum]))
                point.value = count
                changed.append(point)
                entries.append(texts)
        for index, at, key_values, _ in view.keyed:
            for extra, value in record[at].items():
                self._row(index, (*key_values, extra), value, changed, entries, new)

    def _text_of(self, count: int) -> Callable[[int], str]:
        """The text of a number up to ``count``: a lookup in the table (str() per bucket and step costs
        twice as much), grown by doubling; ``str`` beyond ``MAX_NUMBER_TEXTS``."""
        numbers = self._numbers
        if count >= MAX_NUMBER_TEXTS:
            return str
        size = min(MAX_NUMBER_TEXTS, max(2 * int(count), 1024))  # a record's counts are floats
        numbers.extend(map(str, range(len(numbers), size)))
        return numbers.__getitem__

    def _small(self, changed: list[Point], entries: list[Any], new: list[Point]) -> None:
        """Table and view families, rebuilt only when their values moved."""
        usage = self.usage
        for table, indexes in self._table_families.items():
            rows = usage.tables[table]
            if rows == self._tables.get(table):
                continue
            self._tables[table] = {key: list(row) for key, row in rows.items()}
            snap = Snapshot(tables={table: rows})
            for index in indexes:
                self._rebuild(index, snap, changed, entries, new)
        if self._view_families:
            views = usage.views()
            if views != self._views:
                self._views = views
                snap = Snapshot(views=views)
                for index in self._view_families:
                    self._rebuild(index, snap, changed, entries, new)

    def _rebuild(self, index: int, snap: Snapshot, changed: list[Point], entries: list[Any], new: list[Point]) -> None:
        metric = build(self.families[index], self.exposed[index], snap)
        shown = set()
        for labels, value, _exemplar in metric.rows if metric is not None else ():  # type: ignore[attr-defined]
            labels = tuple(labels)
            shown.add(labels)
            self._row(index, labels, value, changed, entries, new)
        for (family, labels), point in self._rows.items():
            if family == index and labels not in shown:
                point.gone = True

    def count(self) -> tuple[int, int]:
        """Points and sample lines rendered so far (series seen)."""
        return len(self.points), sum(p.lines for p in self.points)
