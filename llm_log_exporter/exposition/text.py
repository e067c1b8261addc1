"""Fast Prometheus text exposition for families with many label sets.

prometheus-client's families create one ``Sample`` (with its own label dict) per series line, and
``generate_latest`` then sorts and formats each dict: at 10k label sets x ~25 lines that is most of
a scrape. Row families here keep ``(label values, value)`` rows and build ``Sample`` objects only
when something asks for ``.samples`` (OpenMetrics, tests); ``render_text`` writes their lines
directly, with label names sorted once per family and each distinct label value escaped once.
Output is byte-for-byte what ``prometheus_client.exposition.generate_latest`` gives for the same
families (tested), so either encoder may serve a scrape.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import escape_label_name, escape_metric_name
from prometheus_client.samples import Sample
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


class _Escapes(dict):
    """Label value → escaped text, filled on first use: label values repeat across families."""

    def __missing__(self, key: str) -> str:
        escaped = self[key] = escape_label_value(key)
        return escaped


class _RowFamily(Metric):
    """Base of the row families: ``samples`` is computed on demand from ``rows``."""

    def __init__(self, name: str, documentation: str, typ: str, labels: Sequence[str]) -> None:
        Metric.__init__(self, name, documentation, typ)
        self._labelnames = tuple(labels)
        self.rows: list[tuple[Any, ...]] = []

    @property  # type: ignore[override]
    def samples(self) -> list[Sample]:
        return list(self._samples())

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        if value:
            raise AttributeError("row families take rows through add_metric")

    def _samples(self) -> Iterable[Sample]:
        raise NotImplementedError

    def _order(self, extra: str | None = None) -> tuple[list[str], list[int]]:
        """Escaped label names in exposition (sorted) order, with each one's index in a row's values."""
        names = [*self._labelnames, *([extra] if extra else [])]
        order = sorted(range(len(names)), key=names.__getitem__)
        return [escape_label_name(names[i]) for i in order], order

    def _head(self, exposed_name: str) -> str:
        doc = self.documentation.replace("\\", r"\\").replace("\n", r"\n")
        typ = {"unknown": "untyped"}.get(self.type, self.type)
        name = escape_metric_name(exposed_name)
        return f"# HELP {name} {doc}\n# TYPE {name} {typ}\n"


class CounterRows(_RowFamily):
    """Drop-in for ``CounterMetricFamily(name, doc, labels=...)`` + ``add_metric(labels, value)``."""

    _suffix = "_total"

    def __init__(self, name: str, documentation: str, labels: Sequence[str], typ: str = "counter") -> None:
        super().__init__(name.removesuffix(self._suffix) if self._suffix else name, documentation, typ, labels)

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        self.rows.append((labels, value))

    def _samples(self) -> Iterable[Sample]:
        name, names = self.name + self._suffix, self._labelnames
        for labels, value in self.rows:
            yield Sample(name, dict(zip(names, labels, strict=True)), value, None, None)

    def render(self, out: list[str], escapes: _Escapes) -> None:
        out.append(self._head(self.name + self._suffix))
        names, order = self._order()
        name = escape_metric_name(self.name + self._suffix)
        if not names:  # an unlabelled family
            out.extend(f"{name} {format_value(value)}\n" for _, value in self.rows)
            return
        for labels, value in self.rows:
            labelstr = ",".join([f'{n}="{escapes[labels[i]]}"' for n, i in zip(names, order, strict=True)])
            out.append(f"{name}{{{labelstr}}} {format_value(value)}\n")


class GaugeRows(CounterRows):
    """Drop-in for ``GaugeMetricFamily(name, doc, labels=...)`` + ``add_metric(labels, value)``."""

    _suffix = ""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        super().__init__(name, documentation, labels, "gauge")


class HistogramRows(_RowFamily):
    """Drop-in for ``HistogramMetricFamily(name, doc, labels=...)`` + ``add_metric(labels, buckets, sum)``.

    ``buckets`` is ``[(le text, cumulative count), ...]`` ending with ``+Inf``, as prometheus-client takes it.
    """

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        super().__init__(name, documentation, "histogram", labels)

    def add_metric(self, labels: Sequence[str], buckets: Sequence[tuple[str, float]], sum_value: float | None) -> None:
        self.rows.append((labels, buckets, sum_value))

    def _samples(self) -> Iterable[Sample]:
        name, names = self.name, self._labelnames
        for labels, buckets, sum_value in self.rows:
            base = list(zip(names, labels, strict=True))
            for le, count in buckets:
                yield Sample(name + "_bucket", dict([*base, ("le", le)]), count, None, None)
            if float(buckets[0][0]) >= 0 and sum_value is not None:
                yield Sample(name + "_count", dict(base), buckets[-1][1], None, None)
                yield Sample(name + "_sum", dict(base), sum_value, None, None)

    def render(self, out: list[str], escapes: _Escapes) -> None:
        out.append(self._head(self.name))
        bucket_name = escape_metric_name(self.name + "_bucket")
        count_name = escape_metric_name(self.name + "_count")
        sum_name = escape_metric_name(self.name + "_sum")
        names, order = self._order()
        le_names, le_order = self._order("le")
        le_at = le_order.index(len(self._labelnames))
        le_key = le_names[le_at]
        before = list(zip(le_names[:le_at], le_order[:le_at], strict=True))
        after = list(zip(le_names[le_at + 1:], le_order[le_at + 1:], strict=True))
        le_text: dict[str, str] = {}
        for labels, buckets, sum_value in self.rows:
            head = ",".join([f'{n}="{escapes[labels[i]]}"' for n, i in before])
            tail = ",".join([f'{n}="{escapes[labels[i]]}"' for n, i in after])
            head = head + "," if head else ""
            tail = "," + tail if tail else ""
            for le, count in buckets:
                le_label = le_text.get(le)
                if le_label is None:
                    le_label = le_text[le] = f'{le_key}="{escape_label_value(le)}"'
                out.append(f"{bucket_name}{{{head}{le_label}{tail}}} {format_value(count)}\n")
            if float(buckets[0][0]) >= 0 and sum_value is not None:
                labelstr = ",".join([f'{n}="{escapes[labels[i]]}"' for n, i in zip(names, order, strict=True)])
                labelstr = "{" + labelstr + "}" if labelstr else ""
                out.append(f"{count_name}{labelstr} {format_value(buckets[-1][1])}\n")
                out.append(f"{sum_name}{labelstr} {format_value(sum_value)}\n")


class _Families:
    """A stand-in registry over already-collected families, for prometheus-client's encoder."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def render_text(registry: Any) -> bytes:
    """The Prometheus text format (0.0.4) of everything ``registry`` collects.

    The cyclic GC is paused meanwhile: a scrape allocates ~one object per series line and would
    otherwise trigger full collections over the whole heap, half the time of a 10k label set scrape.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _render(registry)
    finally:
        if paused:
            gc.enable()


def _render(registry: Any) -> bytes:
    out: list[str] = []
    escapes = _Escapes()
    pending: list[Metric] = []
    for metric in registry.collect():
        if isinstance(metric, _RowFamily):
            if pending:
                out.append(generate_latest(_Families(pending)).decode())  # type: ignore[arg-type]
                pending = []
            metric.render(out, escapes)
        else:
            pending.append(metric)
    if pending:
        out.append(generate_latest(_Families(pending)).decode())  # type: ignore[arg-type]
    return "".join(out).encode()
