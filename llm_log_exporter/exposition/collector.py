"""Scrape-time view of the state: one collector that builds every family from the family table.

Each owner of values (the store's usage and file records, the tailer, the state file, the HTTP server)
hands over a ``Snapshot``, copied under its own lock (short); the families are built outside it, so a
scrape never holds up ingestion for longer than the copy. What a family shows and how follows from its
row in ``aggregate.families`` alone; nothing here names a family.

A scrape never fails because one family does: an owner whose snapshot raises, or a family whose build
raises, is left out of that scrape, logged (the first time with its traceback, then at most once a second)
and counted in ``llm_exporter_scrape_errors_total{family}``; every other family is served.
"""

from __future__ import annotations

import logging
import platform
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from llm_log_exporter import __version__
from llm_log_exporter.aggregate.checkpoint import LOAD_RESULTS, REPAIR_PARTS, Checkpointer
from llm_log_exporter.aggregate.families import (
    COLLECTION_LABELS,
    Family,
    Histogram,
    Keyed,
    Slots,
    Table,
    View,
    of_naming,
)
from llm_log_exporter.aggregate.ingest import RateLimitedLog
from llm_log_exporter.aggregate.store import FILE_SLOTS, Store
from llm_log_exporter.aggregate.usage import EXEMPLARS, INDEX, OTEL_INDEX, TABLES, RecordCopies
from llm_log_exporter.exposition.text import CounterRows, GaugeRows, HistogramRows
from llm_log_exporter.tailer import Tailer
from llm_log_exporter.tailing.discovery import FILE_STATES

log = logging.getLogger("llm_log_exporter")

Rows = list[tuple[tuple[str, ...], Any, Any]]  # (label values, value, exemplar or None)
_INDEX = {"usage": {**INDEX, **EXEMPLARS}, "otel": OTEL_INDEX, "files": {slot: i for i, slot in enumerate(FILE_SLOTS)}}


@dataclass
class Snapshot:
    """Copies of one owner's values: records by collection, tables, computed views, histogram bounds."""

    records: dict[str, list[tuple[tuple[str, ...], list]]] = field(default_factory=dict)
    tables: dict[str, dict[tuple[str, ...], list]] = field(default_factory=dict)
    views: dict[str, Any] = field(default_factory=dict)  # None: the family is not shown at all
    bounds: dict[str, tuple[float, ...]] = field(default_factory=dict)
    # The label names of a collection's record keys when they are not the family table's (usage records
    # with --extra-label carry the extra labels after tenant_id, provider, model).
    key_labels: dict[str, tuple[str, ...]] = field(default_factory=dict)


Owner = Callable[[], "Snapshot | None"]  # None: the owner shows nothing now (usage before the first read)


def _les(bounds: tuple[float, ...]) -> tuple[str, ...]:
    """Bucket bounds as ``le`` texts, once per scrape rather than once per series."""
    return tuple(floatToGoString(bound) for bound in (*bounds, float("inf")))


def _view_rows(value: Any) -> Rows:
    """A view's value as rows: a number (no labels), or a mapping of label value(s) to numbers."""
    if isinstance(value, dict):
        return [(key if isinstance(key, tuple) else (key,), v, None) for key, v in value.items()]
    return [((), value, None)]


def _watch(collection: str, slots: list[int]) -> Callable[[list], Any] | None:
    """What a usage or OTel record family shows of a record: its slots (numbers, copied bucket lists, kept
    exemplar tuples; sums of bounded values, never NaN or -0.0, so == tells the same text). Other
    collections keep objects a copy shares (the files' reject counts): none there."""
    return itemgetter(*slots) if collection in ("usage", "otel") else None


def build(family: Family, exposed: str, snap: Snapshot) -> Metric | None:
    """The family's rows from one owner's snapshot; None when the owner does not show it now.

    A family reading a collection makes its rows from the records (``from_records``), so a renderer
    skips unchanged records wholesale; the others get their rows in bulk.
    """
    read = family.read
    labels = family.labels
    collection = getattr(read, "collection", "")
    key_labels = snap.key_labels.get(collection)
    if key_labels is not None:
        labels = (*key_labels, *labels[len(COLLECTION_LABELS[collection]):])
    if family.type == "histogram":
        assert isinstance(read, Histogram)
        metric: Any = HistogramRows(exposed, family.help, labels, _les(snap.bounds[read.bounds]), family.unit)
        index = _INDEX[read.collection]
        parts = [(extra, *(index[f"{name}_{part}"] for part in ("sum", "count", "buckets")))
                 for extra, name in read.split or (("", read.name),)]
        read_at = [at for _, *ats in parts for at in ats]
        if family.exemplar:
            at_ex = index[family.exemplar]
            _, at_sum, at_count, at_buckets = parts[0]
            metric.from_records(snap.records[read.collection], lambda key, values: [
                (key, values[at_buckets], values[at_sum], values[at_ex])
            ] if values[at_count] else [], _watch(read.collection, [*read_at, at_ex]))
            return metric
        metric.from_records(snap.records[read.collection], lambda key, values: [
            ((*key, extra) if extra else key, values[at_buckets], values[at_sum], None)
            for extra, at_sum, at_count, at_buckets in parts if values[at_count]], _watch(read.collection, read_at))
        return metric
    rows = CounterRows if family.type == "counter" else GaugeRows
    metric = rows(exposed, family.help, labels, unit=family.unit)
    if isinstance(read, Slots):
        index = _INDEX[read.collection]
        slots = [(extra, index[slot]) for extra, slot in read.slots]
        if len(slots) == 1 and not slots[0][0]:
            at = slots[0][1]
            at_ex = index[family.exemplar] if family.exemplar else None
            metric.from_records(snap.records[read.collection], lambda key, values: [
                (key, values[at], None if at_ex is None else values[at_ex])
            ] if values[at] is not None else [], _watch(read.collection, [at] if at_ex is None else [at, at_ex]))
        else:
            metric.from_records(snap.records[read.collection], lambda key, values: [
                ((*key, extra) if extra else key, values[at], None) for extra, at in slots if values[at] is not None],
                _watch(read.collection, [at for _, at in slots]))
    elif isinstance(read, Keyed):
        at = _INDEX[read.collection][read.slot]
        metric.from_records(snap.records[read.collection], lambda key, values: [
            ((*key, extra), value, None) for extra, value in values[at].items()])
    elif isinstance(read, Table):
        at = TABLES[read.table].index(read.slot)
        metric.rows = [(key, row[at], None) for key, row in snap.tables[read.table].items()]
    elif isinstance(read, View):
        value = snap.views.get(read.name)
        if value is None:
            return None
        metric.rows = _view_rows(value)
    return metric


class ScrapeErrors:
    """Families left out of a scrape because computing them raised; shared by every collector of a registry."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}  # family name → scrapes it was left out of
        self._seen: set[str] = set()
        self._log = RateLimitedLog()

    def failed(self, families: Iterable[str], exc: BaseException) -> None:
        names = list(families)
        key = f"{','.join(names)}: {type(exc).__name__}"
        with self.lock:
            for name in names:
                self.counts[name] = self.counts.get(name, 0) + 1
            first = key not in self._seen
            self._seen.add(key)
        if first:
            log.error("scrape: left out %s: %s: %s (the other families are served; counted in "
                      "llm_exporter_scrape_errors_total)", ", ".join(names), type(exc).__name__, exc, exc_info=exc)
        else:
            self._log.warning("scrape: left out %s again: %s: %s", ", ".join(names), type(exc).__name__, exc)

    def snapshot(self) -> Snapshot:
        with self.lock:
            return Snapshot(views={"scrape_errors": dict(self.counts)})


class FamilyCollector(Collector):
    """Yields the families of the given owners, in table order; ``describe`` lets the registry check names."""

    def __init__(self, owners: dict[str, Owner], namespace: str = "llm", errors: ScrapeErrors | None = None,
                 naming: str = "llm") -> None:
        self.owners = owners
        self.namespace = namespace
        self.families = [family for family in of_naming(naming) if family.owner in owners]
        self.errors = errors if errors is not None else ScrapeErrors()

    def describe(self) -> Iterator[Metric]:
        for family in self.families:
            yield Metric(family.exposed(self.namespace), family.help, family.type)

    def collect(self) -> Iterator[Metric]:
        snapshots: dict[str, Snapshot | None] = {}
        failed: set[str] = set()
        for name, owner in self.owners.items():
            try:
                snapshots[name] = owner()
            except Exception as exc:
                failed.add(name)
                self.errors.failed((f.exposed(self.namespace) for f in self.families if f.owner == name), exc)
        for family in self.families:
            if family.owner in failed:
                continue
            snap = snapshots[family.owner]
            if snap is None:
                continue
            exposed = family.exposed(self.namespace)
            try:
                metric = build(family, exposed, snap)
            except Exception as exc:
                self.errors.failed((exposed,), exc)
                continue
            if metric is not None:
                yield metric


class Guarded(Collector):
    """Another library's collector (process, platform) under the same rule: a failure leaves it out."""

    def __init__(self, inner: Collector, name: str, errors: ScrapeErrors) -> None:
        self.inner = inner
        self.name = name
        self.errors = errors

    def describe(self) -> Iterable[Metric]:
        describe = getattr(self.inner, "describe", None)
        return describe() if describe is not None else []

    def collect(self) -> Iterable[Metric]:
        try:
            return list(self.inner.collect())
        except Exception as exc:
            self.errors.failed((self.name,), exc)
            return []


# ----------------------------------------------------------------- the owners' snapshots


def store_owners(store: Store) -> dict[str, Owner]:
    """The store's three owners: per-file records (once ready), the ready flag and build info, and usage
    (once ready).

    Per-file counters wait for the initial read like usage does: restored from a state file they stand at
    the last save, lower than what the process served before a SIGKILL until the lines after that save
    are read again, and Prometheus would take the dip for a counter reset (``increase()`` jumps). Once
    ready they are back at least where they were, so they never go down across a restart."""

    def files() -> Snapshot | None:
        if not store.ready.is_set():
            return None
        with store.lock:
            return Snapshot(records={"files": [((path,), st.values()) for path, st in store.files.items()]})

    def status() -> Snapshot:
        return Snapshot(views={"ready": 1.0 if store.ready.is_set() else 0.0,
                               "build_info": {(__version__, platform.python_version()): 1.0}})

    copies = RecordCopies()  # usage records as last copied: an unchanged record is handed over as the same object

    def usage() -> Snapshot | None:
        if not store.ready.is_set():
            return None
        u = store.usage
        with store.lock:
            return Snapshot(records={"usage": u.copy_records(copies), "otel": u.copy_otel_records()},
                            tables={name: {key: list(row) for key, row in rows.items()} for name, rows in
                                    u.tables.items()},
                            views=u.views(), bounds=dict(u.bounds),
                            key_labels={"usage": u.key_labels, "otel": u.otel_key_labels} if u.extra_labels else {})

    return {"files": files, "store": status, "usage": usage}


def scrape_owner(errors: ScrapeErrors) -> Owner:
    return errors.snapshot


def tailer_owner(tailer: Tailer) -> Owner:
    def snapshot() -> Snapshot:
        lag = tailer.lag_bytes()
        states = {(pattern, state): 1.0 if now == state else 0.0
                  for pattern, now in tailer.file_states().items() for state in FILE_STATES}
        return Snapshot(views={"lag_bytes": dict(sorted(lag.items())), "watched_files": len(lag),
                               "file_state": states})

    return snapshot


def checkpoint_owner(checkpointer: Checkpointer) -> Owner:
    def snapshot() -> Snapshot:
        return Snapshot(views={
            "state_saves": dict(checkpointer.writes),
            "state_load_info": {result: 1.0 if checkpointer.load_result == result else 0.0 for result in LOAD_RESULTS},
            "state_repairs": {part: checkpointer.repairs.get(part, 0) for part in REPAIR_PARTS},
            "state_last_save": checkpointer.last_write,
        })

    return snapshot


def usage_families(collector: FamilyCollector) -> Iterable[Metric]:
    """What a scrape shows of usage alone (no self-metrics): the backfill of ``replay``."""
    snap = collector.owners["usage"]()
    if snap is None:
        return
    for family in collector.families:
        if family.owner == "usage" and family.prefix != "llm_exporter":
            metric = build(family, family.exposed(collector.namespace), snap)
            if metric is not None:
                yield metric
