"""Row families, and the text of one series' sample lines, shared by both exposition formats.

prometheus-client's families create one ``Sample`` (with its own label dict) per series line, and its
encoders then sort and format each dict: at 10k label sets x ~25 lines that is most of a scrape (and its
OpenMetrics encoder is ten times slower again). The collector's families here keep *rows*: label values
and raw values, a histogram's per-bucket counts not yet made cumulative, with room for exemplars (one per
counter series, one per bucket). ``exposition/render.py`` turns rows into lines with prefixes cached
across scrapes; ``.samples`` builds prometheus-client ``Sample`` objects on demand for every other
consumer (replay's backfill, prometheus-client's encoders, tests), and both give the same bytes.

The text format (0.0.4) and OpenMetrics 1.0 write a series' sample lines identically (sorted label
names, the same label value escaping, ``floatToGoString`` values); they differ in the family header,
in ``# EOF`` and in exemplars, which only OpenMetrics carries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Exemplar, Sample
from prometheus_client.utils import floatToGoString

_INF = float("inf")


def format_value(value: float) -> str:
    """``floatToGoString`` with a shortcut for the common finite values below 1e6."""
    value = float(value)
    if -_INF < value < 1e6:  # also False for NaN
        return repr(value)
    return floatToGoString(value)


def escape_label_value(value: str) -> str:
    """A label value as the text and OpenMetrics formats quote it."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


# What a usage record keeps per exemplar: (call_id, trace_id, value, ts). Rows made from records carry these
# as they are (the record copy holds the very tuple until another call replaces it, so a renderer tells an
# unchanged exemplar by identity); an ``Exemplar`` is made only where prometheus-client needs one.
Kept = tuple[str, str, float, "float | None"]
# OpenMetrics caps an exemplar's label names and values at 128 characters together.
_MAX_CALL_ID, _MAX_TRACE_ID = 64, 48


def exemplar(kept: Exemplar | Kept | None) -> Exemplar | None:
    """A row's exemplar as prometheus-client's: an ``Exemplar`` as it is, a kept tuple with its ids cut to fit."""
    if kept is None or type(kept) is not tuple:
        return kept  # type: ignore[return-value]
    call_id, trace_id, value, ts = kept
    labels = {"call_id": call_id[:_MAX_CALL_ID]}
    if trace_id:
        labels["trace_id"] = trace_id[:_MAX_TRACE_ID]
    return Exemplar(labels, value, ts)


def exemplar_text(kept: Exemplar | Kept) -> str:
    """`` # {labels} value [timestamp]`` after an OpenMetrics sample, as prometheus-client writes it."""
    if type(kept) is tuple:  # a record's: the labels are call_id and trace_id, in that (sorted) order
        call_id, trace_id, value, ts = kept
        labels = f'call_id="{escape_label_value(call_id[:_MAX_CALL_ID])}"'
        if trace_id:
            labels += f',trace_id="{escape_label_value(trace_id[:_MAX_TRACE_ID])}"'
        if ts is None:
            return f" # {{{labels}}} {floatToGoString(value)}"
        return f" # {{{labels}}} {floatToGoString(value)} {ts}"
    made = exemplar(kept)
    assert made is not None
    labels = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in sorted(made.labels.items()))
    if made.timestamp is None:
        return f" # {{{labels}}} {floatToGoString(made.value)}"
    return f" # {{{labels}}} {floatToGoString(made.value)} {made.timestamp}"


RecordRows = Callable[[Any, list], list]  # (record key, record values) → that record's rows
RecordWatch = Callable[[list], Any]  # record values → what of them the family shows (compared with ==)


class RowFamily(Metric):
    """Base of the row families; ``samples`` is computed on demand.

    Rows are either added one by one (``add_metric``) or set in bulk (``rows = [...]``), or made from
    the records of a collection (``from_records``): then a renderer can tell an unchanged range of
    records by comparing the records themselves, without making their rows at all.
    """

    def __init__(self, name: str, documentation: str, typ: str, labels: Sequence[str], unit: str = "") -> None:
        Metric.__init__(self, name, documentation, typ, unit)
        self.labelnames = tuple(labels)
        self._rows: list[tuple[Any, ...]] = []
        self.records: list[tuple[Any, list]] | None = None
        self.record_rows: RecordRows | None = None
        self.record_watch: RecordWatch | None = None

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        if self.records is None or self.record_rows is None:
            return self._rows
        make = self.record_rows
        return [row for key, values in self.records for row in make(key, values)]

    @rows.setter
    def rows(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows, self.records = rows, None

    def from_records(self, records: list[tuple[Any, list]], make: RecordRows, watch: RecordWatch | None = None) -> None:
        """Rows are ``make(key, values)`` of each record, in order (records are copies: not changed later).
        ``watch(values)``: the values the rows are made of; equal for two copies of a record, their rows
        are the same (a renderer keeps the lines it made without making rows)."""
        self.records, self.record_rows, self.record_watch = records, make, watch

    @property  # type: ignore[override]
    def samples(self) -> list[Sample]:
        return list(self._samples())

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        if value:
            raise AttributeError("row families take rows through add_metric")

    def _samples(self) -> Iterable[Sample]:
        raise NotImplementedError

    def sample_names(self) -> tuple[str, ...]:
        """The names of the sample lines one series writes, in order (exemplars aside)."""
        raise NotImplementedError


class CounterRows(RowFamily):
    """Rows ``(label values, value, exemplar: an Exemplar, a Kept tuple or None)``; drop-in for
    ``CounterMetricFamily`` + ``add_metric``."""

    suffix = "_total"

    def __init__(self, name: str, documentation: str, labels: Sequence[str], typ: str = "counter",
                 unit: str = "") -> None:
        super().__init__(name.removesuffix(self.suffix) if self.suffix else name, documentation, typ, labels, unit)

    def add_metric(self, labels: Sequence[str], value: float, exemplar: Exemplar | None = None) -> None:
        self._rows.append((tuple(labels), value, exemplar))

    def sample_names(self) -> tuple[str, ...]:
        return (self.name + self.suffix,)

    def _samples(self) -> Iterable[Sample]:
        name, names = self.name + self.suffix, self.labelnames
        for labels, value, kept in self.rows:
            yield Sample(name, dict(zip(names, labels, strict=True)), value, None, exemplar(kept))


class GaugeRows(CounterRows):
    """Drop-in for ``GaugeMetricFamily(name, doc, labels=...)`` + ``add_metric(labels, value)``."""

    suffix = ""

    def __init__(self, name: str, documentation: str, labels: Sequence[str], unit: str = "") -> None:
        super().__init__(name, documentation, labels, "gauge", unit)

    def add_metric(self, labels: Sequence[str], value: float, exemplar: Exemplar | None = None) -> None:
        if exemplar is not None:
            raise ValueError("OpenMetrics allows exemplars on counters and histogram buckets only")
        self._rows.append((tuple(labels), value, None))


class HistogramRows(RowFamily):
    """Rows ``(label values, per-bucket counts, sum, exemplars or None)`` over the family's ``les``.

    ``les`` are the bucket bounds as ``le`` texts, ending with ``+Inf``; ``counts[i]`` is the number of
    observations in bucket ``i`` alone (the record's layout): lines show them cumulative. ``exemplars``,
    when given, holds one ``Exemplar`` (or a record's ``Kept`` tuple) or None per bucket. As in
    prometheus-client, ``_count`` and ``_sum`` are left out when the first bound is negative or the sum is
    unknown.
    """

    def __init__(self, name: str, documentation: str, labels: Sequence[str], les: Sequence[str],
                 unit: str = "") -> None:
        super().__init__(name, documentation, "histogram", labels, unit)
        if not les or les[-1] != "+Inf":
            raise ValueError("histogram bounds must end with +Inf")
        self.les = tuple(les)
        self.with_count = float(les[0]) >= 0

    def add_metric(self, labels: Sequence[str], counts: Sequence[int], sum_value: float | None,
                   exemplars: Sequence[Exemplar | None] | None = None) -> None:
        if len(counts) != len(self.les) or (exemplars is not None and len(exemplars) != len(self.les)):
            raise ValueError(f"{self.name}: {len(self.les)} buckets, got {len(counts)} counts")
        self._rows.append((tuple(labels), counts, sum_value, exemplars))

    def sample_names(self) -> tuple[str, ...]:
        return (self.name + "_bucket", self.name + "_count", self.name + "_sum")

    def _samples(self) -> Iterable[Sample]:
        name, names, les = self.name, self.labelnames, self.les
        for labels, counts, sum_value, exemplars in self.rows:
            base = list(zip(names, labels, strict=True))
            total = 0
            for i, (le, count) in enumerate(zip(les, counts, strict=True)):
                total += count
                kept = exemplars[i] if exemplars is not None else None
                yield Sample(name + "_bucket", dict([*base, ("le", le)]), total, None, exemplar(kept))
            if self.with_count and sum_value is not None:
                yield Sample(name + "_count", dict(base), total, None, None)
                yield Sample(name + "_sum", dict(base), sum_value, None, None)
