"""One renderer for both exposition formats, keeping what it rendered from one scrape to the next.

How a series line is cached: per row family (``exposition/text.py``) a ``_Series`` per label set keeps its
``name{labels} `` prefix (label values escaped once; a histogram's bucket prefixes around ``le``), the raw
values it last rendered, and its lines in both formats (``text`` and ``om``). A series is rendered again only
when its raw values changed (a histogram's buckets are made cumulative only then). Families made from a
collection's records (``RowFamily.from_records``) are cached a level up as well: a record the collector
hands over as the very same object as last scrape (its copy of a record whose change count did not move)
reuses the piece holding all its lines, without making its rows; a range of such records reuses its chunk.

Where an exemplar attaches: rows carry one per counter series, or one per histogram bucket; it is part of
the values a series compares, so a new exemplar re-renders that series, and only its ``om`` line gets the
`` # {labels} value [timestamp]`` suffix (``exemplar_text``), the text format having no room for it. A
record-backed family hands over the tuples its records keep (``text.Kept``, the same object while a record
keeps it): a histogram re-rendered makes the suffix again only for the buckets whose exemplar is new.

Chunks: the lines of a family are grouped in chunks of about ``chunk_bytes``; a chunk made of the very lines
of the previous scrape reuses its encoded bytes and, when the scraper accepts gzip, its compressed bytes.
Each chunk is deflated on its own and ends on a byte boundary (a sync flush, no final block), so the chunks
concatenate into one ordinary gzip member, as pigz does: a scrape compresses only the chunks that changed,
within a time budget (``Renderer._compress``). A scrape whose budget is not likely to cover every chunk is
sent uncompressed at once and its budget spent after the reply (``Renderer.scrape`` and
``compress_pending``, what the server calls: a scraper polling many times a second while lines arrive);
``render`` writes chunks past the budget as stored blocks of the same member instead.

Formats come from prometheus-client's own negotiation (``choose_encoder``): the text format (0.0.4, or
1.0.0 with an escaping scheme) and OpenMetrics, with the escaping a scraper asks for. Families that are not
row families (process and platform collectors, anything else registered) go through prometheus-client's
encoder for the negotiated format, so every family serves either format. The caches belong to the
exposition side: reading the aggregation state changes nothing.
"""

from __future__ import annotations

import gc
import math
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate, compress
from operator import is_not
from typing import Any

from prometheus_client.exposition import choose_encoder
from prometheus_client.exposition import generate_latest as text_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import (
    ALLOWUTF8,
    UNDERSCORES,
    escape_label_name,
    escape_metric_name,
)
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_encoder

from llm_log_exporter.exposition.text import (
    CounterRows,
    HistogramRows,
    RecordWatch,
    RowFamily,
    escape_label_value,
    exemplar_text,
    format_value,
)

_EOF = "# EOF\n"
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, mtime 0, unknown OS
_FINAL_BLOCK = b"\x03\x00"  # an empty final block (fixed Huffman): ends the deflate stream
_STORED = struct.Struct("<BHH")  # a stored block's header when it starts on a byte boundary
_CHANGED = object()  # compares unequal to any value: a new series is always rendered


def _signbit(value: Any) -> bool:
    """-0.0 equals 0.0 yet prints apart: a zero is re-rendered when its sign changed."""
    return isinstance(value, float) and math.copysign(1.0, value) < 0


@dataclass(frozen=True)
class Format:
    """A negotiated exposition format: its Content-Type and prometheus-client's encoder for it."""

    content_type: str
    encoder: Callable[..., bytes]
    openmetrics: bool
    escaping: str
    fast: bool  # row families rendered here (else everything goes through ``encoder``)


def negotiate(accept: str | None) -> Format:
    """The format prometheus-client's ``choose_encoder`` picks for an ``Accept`` header."""
    encoder, content_type = choose_encoder(accept or "")
    func = getattr(encoder, "func", encoder)
    escaping = getattr(encoder, "keywords", {}).get("escaping", UNDERSCORES)
    return Format(content_type, encoder, func is openmetrics_encoder, escaping,
                  func is openmetrics_encoder or func is text_encoder)


TEXT = negotiate("text/plain; version=0.0.4")
OPENMETRICS = negotiate("application/openmetrics-text; version=1.0.0")


class _Chunk:
    """Consecutive lines of one family; encoded once, compressed once (when first sent within budget)."""

    __slots__ = ("data", "deflated", "packed", "pieces")

    def __init__(self, pieces: list[str] | list[bytes], data: bytes | None = None) -> None:
        self.pieces = pieces  # lines (str), or a record range's encoded pieces (bytes) with their data
        self.data = data if data is not None else "".join(pieces).encode()  # type: ignore[arg-type]
        self.deflated: bytes | None = None  # raw deflate ending on a byte boundary (sync flush), once made
        self.packed: bytes | None = None  # the same as stored blocks, once made (sent until deflated)

    def deflate(self, level: int) -> bytes:
        if self.deflated is None:
            deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
            self.deflated = deflate.compress(self.data) + deflate.flush(zlib.Z_SYNC_FLUSH)
        return self.deflated

    def stored(self) -> bytes:
        """The chunk as stored (uncompressed) deflate blocks: a valid part of the stream for a copy's cost.
        Each starts on a byte boundary, as every chunk does: a 0 byte (not final, stored), LEN, NLEN."""
        if self.packed is None:
            data = self.data
            self.packed = b"".join([part for at in range(0, len(data), 0xFFFF) for part in (
                _STORED.pack(0, min(0xFFFF, len(data) - at), 0xFFFF ^ min(0xFFFF, len(data) - at)),
                data[at:at + 0xFFFF])])
        return self.packed


class _Series:
    """One series' raw values as last rendered, its text in both formats, and what rebuilds it."""

    __slots__ = ("exemplar_texts", "exemplars", "om", "parts", "rendered", "text", "values")

    def __init__(self, parts: tuple[str, ...]) -> None:
        self.values: Any = _CHANGED
        self.exemplars: Any = None
        self.exemplar_texts: list[str | None] = []  # a histogram's, per bucket: made again only for a new exemplar
        self.rendered = 0  # the family's render count when this series was last rendered
        self.parts = parts  # prefixes: a scalar's "name{labels} "; a histogram's bucket head/tail, count, sum
        self.text = ""
        self.om = ""


class _RecordChunk:
    """A chunk made from a range of records: those records (kept alive, so identity comparisons hold), and how
    many series each record's rows show (its chunk keeps a piece of text per record)."""

    __slots__ = ("chunk", "count", "counts", "records")

    def __init__(self, records: list[tuple[Any, list]], chunk: _Chunk, counts: list[int]) -> None:
        self.records, self.chunk, self.counts = records, chunk, counts  # chunk.pieces: a piece per record
        self.count = sum(counts)

    def same_records(self, records: list[tuple[Any, list]]) -> bool:
        """Identity, not equality: -0.0 == 0.0 prints apart."""
        return len(records) == len(self.records) and not any(map(is_not, records, self.records))


class _FamilyCache:
    """One row family's series and chunks, for one escaping scheme."""

    def __init__(self, metric: RowFamily, escaping: str) -> None:
        names = metric.labelnames
        self.escaping = escaping
        self.histogram = isinstance(metric, HistogramRows)
        self.sample_names = tuple(escape_metric_name(n, escaping) for n in metric.sample_names())
        order = sorted(range(len(names)), key=names.__getitem__)
        self.order = [(escape_label_name(names[i], escaping), i) for i in order]
        if isinstance(metric, HistogramRows):
            self.le_at = sum(1 for n in names if n < "le")  # where le sorts among the family's labels
            le = escape_label_name("le", escaping)
            self.le_labels = [f'{le}="{escape_label_value(v)}"' for v in metric.les]
            self.with_count = metric.with_count
        self.series: dict[Any, _Series] = {}
        self.chunks: dict[bool, list[_Chunk]] = {False: [], True: []}
        self.record_chunks: dict[bool, list[_RecordChunk]] = {False: [], True: []}
        # Per record key: (the record as last rendered, the lines of its series, how many series, the family's
        # render count when those lines were joined, what of the record they show: ``watch``).
        self.record_pieces: dict[bool, dict[Any, tuple[Any, bytes, int, int, Any]]] = {False: {}, True: {}}
        self.per_chunk = 0  # series (or records) per chunk: fixed once, so chunk boundaries stay put
        self.rendered = 0  # series renders so far (each series keeps the number of its last one)
        self.watch: RecordWatch | None = None  # what of a record the family shows (the last scrape's metric's)
        self.newest = 0  # the newest render among the rows of the last ``lines`` call
        self.last_records: dict[bool, list | None] = {False: None, True: None}  # the records last rendered
        self.last_out: dict[bool, list[_Chunk] | None] = {False: None, True: None}  # and the chunks they made
        self.last_shown = {False: 0, True: 0}  # how many series those chunks show
        self.headers = {om: _Chunk([self._header(metric, om)]) for om in (False, True)}

    def _header(self, metric: RowFamily, om: bool) -> str:
        if om:
            name = escape_metric_name(metric.name, self.escaping)
            doc = escape_label_value(metric.documentation)
            unit = f"# UNIT {name} {metric.unit}\n" if metric.unit else ""
            return f"# HELP {name} {doc}\n# TYPE {name} {metric.type}\n{unit}"
        name = escape_metric_name(metric.name + (metric.suffix if isinstance(metric, CounterRows) else ""),
                                  self.escaping)
        doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        return f"# HELP {name} {doc}\n# TYPE {name} {metric.type}\n"

    def _labels(self, labels: Any, escapes: dict[str, str], order: list[tuple[str, int]]) -> str:
        out = []
        for name, i in order:
            value = labels[i]
            escaped = escapes.get(value)
            if escaped is None:
                escaped = escapes[value] = escape_label_value(value)
            out.append(f'{name}="{escaped}"')
        return ",".join(out)

    def lines(self, rows: list[tuple[Any, ...]], om: bool, escapes: dict[str, str]) -> list[str]:
        """Each row's lines (one piece per series), rendered again only where its values changed."""
        return self._histograms(rows, om, escapes) if self.histogram else self._scalars(rows, om, escapes)

    def _scalars(self, rows: list[tuple[Any, ...]], om: bool, escapes: dict[str, str]) -> list[str]:
        series = self.series
        pieces: list[str] = []
        append = pieces.append
        newest = 0
        for labels, value, exemplar in rows:
            s = series.get(labels)
            if s is None:
                labelstr = self._labels(labels, escapes, self.order)
                s = series[labels] = _Series((f"{self.sample_names[0]}{{{labelstr}}} " if labelstr
                                              else f"{self.sample_names[0]} ",))
            if value != s.values or exemplar != s.exemplars or (not value and _signbit(value) != _signbit(s.values)):
                text = s.text = f"{s.parts[0]}{format_value(value)}\n"
                s.values, s.exemplars = value, exemplar
                s.om = text if exemplar is None else f"{text[:-1]}{exemplar_text(exemplar)}\n"
                s.rendered = self.rendered = self.rendered + 1
            if s.rendered > newest:
                newest = s.rendered
            append(s.om if om else s.text)
        self.newest = newest
        return pieces

    def _histogram_parts(self, labels: Any, escapes: dict[str, str]) -> tuple[str, ...]:
        bucket, count, total = self.sample_names
        head = self._labels(labels, escapes, self.order[:self.le_at])
        tail = self._labels(labels, escapes, self.order[self.le_at:])
        labelstr = self._labels(labels, escapes, self.order)
        labelstr = f"{{{labelstr}}}" if labelstr else ""
        return (f"{bucket}{{{head}," if head else f"{bucket}{{", f",{tail}}} " if tail else "} ",
                f"{count}{labelstr} ", f"{total}{labelstr} ")

    def _histograms(self, rows: list[tuple[Any, ...]], om: bool, escapes: dict[str, str]) -> list[str]:
        series = self.series
        le_labels = self.le_labels
        with_count = self.with_count
        pieces: list[str] = []
        append = pieces.append
        newest = 0
        for labels, counts, sum_value, exemplars in rows:
            s = series.get(labels)
            if s is None:
                s = series[labels] = _Series(self._histogram_parts(labels, escapes))
            values = (counts, sum_value)
            if values != s.values or exemplars != s.exemplars or (not sum_value and sum_value is not None
                                                                  and _signbit(sum_value) != _signbit(s.values[1])):
                head, tail, count_prefix, sum_prefix = s.parts
                cumulative = list(accumulate(counts))
                total = cumulative[-1]
                # below 1e6 every cumulative count prints as its float's repr (what format_value does)
                texts = map(repr, map(float, cumulative)) if total < 1e6 else map(format_value, cumulative)
                lines = [f"{head}{le_label}{tail}{text}\n" for le_label, text in zip(le_labels, texts, strict=True)]
                if with_count and sum_value is not None:
                    lines.append(f"{count_prefix}{format_value(total)}\n")
                    lines.append(f"{sum_prefix}{format_value(sum_value)}\n")
                s.text = "".join(lines)
                if exemplars is None or not any(exemplars):
                    s.om = s.text
                    s.exemplar_texts = []
                else:
                    before, texts = s.exemplars, s.exemplar_texts
                    if before is None or len(texts) != len(exemplars):
                        before, texts = (None,) * len(exemplars), [None] * len(exemplars)
                    texts = [text if exemplar is old else None if exemplar is None else exemplar_text(exemplar)
                             for exemplar, old, text in zip(exemplars, before, texts, strict=True)]
                    for i, text in enumerate(texts):
                        if text is not None:
                            lines[i] = f"{lines[i][:-1]}{text}\n"
                    s.om = "".join(lines)
                    s.exemplar_texts = texts
                s.values, s.exemplars = values, exemplars
                s.rendered = self.rendered = self.rendered + 1
            if s.rendered > newest:
                newest = s.rendered
            append(s.om if om else s.text)
        self.newest = newest
        return pieces

    def _prune(self, keys: list[Any]) -> None:
        """Forget series no longer shown (a file no longer followed, a breaker gone)."""
        if len(self.series) > len(keys):
            series = self.series
            self.series = {key: series[key] for key in keys if key in series}

    # ----------------------------------------------------------------- chunks

    def chunked(self, metric: RowFamily, om: bool, escapes: dict[str, str], chunk_bytes: int,
                changed: Callable[[list | None, list], list[int] | None] | None = None) -> list[_Chunk]:
        """The family's header and lines in chunks, reusing the chunks that did not change."""
        if metric.records is not None:
            return self._record_chunked(metric, om, escapes, chunk_bytes, changed)
        rows = metric.rows
        pieces = self.lines(rows, om, escapes)
        self._prune([row[0] for row in rows])
        if not self.per_chunk and pieces:
            self.per_chunk = max(1, int(chunk_bytes * min(len(pieces), 256) // max(sum(map(len, pieces[:256])), 1)))
        step = self.per_chunk or 1
        cached = self.chunks[om]
        out = [self.headers[om]]
        for n, start in enumerate(range(0, len(pieces), step)):
            part = pieces[start:start + step]
            chunk = cached[n] if n < len(cached) else None
            if chunk is None or chunk.pieces != part:
                chunk = _Chunk(part)
                if n < len(cached):
                    cached[n] = chunk
                else:
                    cached.append(chunk)
            out.append(chunk)
        del cached[len(out) - 1:]
        return out

    def _record_chunked(self, metric: RowFamily, om: bool, escapes: dict[str, str], chunk_bytes: int,
                        changed: Callable[[list | None, list], list[int] | None] | None = None) -> list[_Chunk]:
        """Chunks by ranges of records. A record handed over as the very same ``(key, values)`` object as last
        scrape (the collector's copy of a record that did not change) is unchanged: a range of such records
        reuses its chunk without making any rows, and in other ranges such a record reuses its piece (the
        lines of all its series). Any other record makes its rows, and its series are rendered again where
        their values changed (equal is not enough: -0.0 == 0.0 prints apart). ``changed`` (the renderer's,
        shared by the families of one scrape) names the positions whose record is not the same object as
        in the list this family rendered last: only their ranges are looked at; without it, or when
        records were dropped, every range compares its records' identities."""
        records, make = metric.records, metric.record_rows
        assert records is not None and make is not None
        self.watch = metric.record_watch
        if not self.per_chunk and records:
            head = records[:64]
            pieces = self.lines([row for key, values in head for row in make(key, values)], om, escapes)
            self.per_chunk = max(1, int(chunk_bytes * len(head) // max(sum(map(len, pieces)), 1)))
        step = self.per_chunk or 1
        cached = self.record_chunks[om]
        last = self.last_records[om]
        positions = changed(last, records) if changed is not None else None
        watch = self.watch
        if positions and watch is not None and last is not None:
            # Of the changed records, those whose slots this family shows moved: the others keep their lines
            # (each skipped record shows what the one before it showed, so the kept lines stay true).
            shared = len(last)
            positions = [i for i in positions if i >= shared or watch(records[i][1]) != watch(last[i][1])]
        self.last_records[om] = records
        kept = self.record_pieces[om]
        previous = self.last_out[om]
        if positions is not None and previous is not None:
            # Only the ranges holding a changed record are looked at: the previous scrape's list of chunks
            # is copied (one C-level copy) and those ranges replaced, so an idle family costs no loop.
            dirty: dict[int, list[int]] = {}
            for i in positions:
                dirty.setdefault(i // step, []).append(i % step)
            out = previous.copy()
            shown = self.last_shown[om]
            for n in sorted(dirty):
                old = cached[n] if n < len(cached) else None
                new = self._range(records[n * step:(n + 1) * step], old, dirty[n], kept, make, om, escapes)
                if old is None:
                    cached.append(new)
                    out.append(new.chunk)
                else:
                    cached[n] = new
                    out[n + 1] = new.chunk
                    shown -= old.count
                shown += new.count
        else:
            out = [self.headers[om]]
            shown = 0
            for n, start in enumerate(range(0, len(records), step)):
                old = cached[n] if n < len(cached) else None
                part = records[start:start + step]
                if old is None or not old.same_records(part):
                    old = self._range(part, old, None, kept, make, om, escapes)
                    if n < len(cached):
                        cached[n] = old
                    else:
                        cached.append(old)
                out.append(old.chunk)
                shown += old.count
            del cached[len(out) - 1:]
        self.last_out[om], self.last_shown[om] = out, shown
        if len(kept) > len(records):
            kept = self.record_pieces[om] = {key: kept[key] for key, _ in records if key in kept}
        if len(self.series) > shown:  # series of records gone (a file no longer followed)
            self._prune([row[0] for record, *_ in kept.values() for row in make(*record)])
        return out

    def _range(self, part: list[tuple[Any, list]], old: _RecordChunk | None, offsets: list[int] | None,
               kept: dict[Any, tuple[Any, bytes, int, int, Any]], make: Any, om: bool,
               escapes: dict[str, str]) -> _RecordChunk:
        """A range's chunk made again: only the records at ``offsets`` (when the range kept its length), else
        every record that is not the very object at its place in ``old``."""
        if old is not None and offsets is not None and len(part) == len(old.records):
            pieces = list(old.chunk.pieces)
            counts = old.counts.copy()
            for i in offsets:
                pieces[i], counts[i] = self._piece(part[i], kept, make, om, escapes)
            if all(pieces[i] is old.chunk.pieces[i] for i in offsets):
                # records changed, not this family's lines (another family's slots moved): the chunk stays,
                # compressed form included
                old.records = part
                return old
            return _RecordChunk(part, _Chunk(pieces, b"".join(pieces)), counts)  # type: ignore[arg-type]
        before = old.records if old is not None else ()
        pieces = []
        counts = []
        for i, record in enumerate(part):
            if i < len(before) and before[i] is record:  # the same record at the same place
                pieces.append(old.chunk.pieces[i])  # type: ignore[union-attr]
                counts.append(old.counts[i])  # type: ignore[union-attr]
            else:
                piece, count = self._piece(record, kept, make, om, escapes)
                pieces.append(piece)
                counts.append(count)
        return _RecordChunk(part, _Chunk(pieces, b"".join(pieces)), counts)  # pieces: encoded once

    def _piece(self, record: tuple[Any, list], kept: dict[Any, tuple[Any, bytes, int, int, Any]], make: Any, om: bool,
               escapes: dict[str, str]) -> tuple[bytes, int]:
        """The encoded lines of all the series of ``record``, and how many: kept while it is the same object, and
        while a new object of it shows the same series, none rendered since the piece was made (the same bytes;
        the series' texts serve both formats, so a render for the other format counts too). Series only
        ever appear (counts do not go down), and a new one is rendered: the same number of rows, none
        rendered since, is the very same lines."""
        piece = kept.get(record[0])
        if piece is None or piece[0] is not record:
            watch = self.watch
            shown = watch(record[1]) if watch is not None else None
            if piece is not None and watch is not None and shown == piece[4]:  # the values it shows did not move
                piece = kept[record[0]] = (record, piece[1], piece[2], piece[3], shown)
                return piece[1], piece[2]
            rows = make(*record)
            lines = self.lines(rows, om, escapes)
            if piece is not None and self.newest <= piece[3] and len(rows) == piece[2]:
                piece = kept[record[0]] = (record, piece[1], piece[2], piece[3], shown)
            else:
                piece = kept[record[0]] = (record, "".join(lines).encode(), len(rows), self.rendered, shown)
        return piece[1], piece[2]


class _Registry:
    """A stand-in registry over already-collected families, for prometheus-client's encoders."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


class Renderer:
    """Renders a registry in a negotiated format, optionally gzip-compressed; safe to share between threads.

    Scrapes are rendered one at a time (the caches are shared); the cyclic GC is paused meanwhile, since
    a scrape of many new series allocates ~one object per line and would otherwise trigger full
    collections over the whole heap.
    """

    def __init__(self, chunk_bytes: int = 4096, gzip_level: int = 1, gzip_share: float = 0.1) -> None:
        self.chunk_bytes = chunk_bytes
        self.gzip_level = gzip_level
        self.gzip_share = gzip_share
        self._families: dict[tuple[Any, ...], _FamilyCache] = {}
        self._lock = threading.Lock()
        self._last_gzip: float | None = None  # when the previous gzip scrape ended (monotonic)
        self._deflate_cost: float | None = None  # thread CPU seconds per byte deflated, as last measured
        self._pending: list[_Chunk] | None = None  # the last scrape's chunks, when sent before compressing them
        self._diffs: dict[tuple[int, int], list[int] | None] = {}  # this scrape's: (old list, new list) → changed

    def render(self, registry: Any, fmt: Format = TEXT, gzip: bool = False) -> bytes:
        """The exposition of everything ``registry`` collects, gzip-compressed when ``gzip`` (chunks past the
        compression budget as stored blocks of the same member)."""
        with self._lock:
            chunks = self._collected(registry, fmt)
            if not gzip:
                return b"".join([chunk.data for chunk in chunks])
            self._compress(chunks)
            return self._member(chunks)

    def scrape(self, registry: Any, fmt: Format = TEXT, gzip: bool = False) -> tuple[bytes, bool]:
        """What the server sends: the body, and whether it is gzip. The chunks not compressed yet are compressed
        now when the budget is likely to cover them all (by the deflate speed measured so far); otherwise (a
        scraper polling many times a second while lines arrive) the body goes uncompressed at once, stored
        blocks costing a CRC and a copy for nothing, and the budget is spent by ``compress_pending`` once
        the reply is sent, for the scrapes to come: the reply does not wait for compression it cannot use."""
        with self._lock:
            chunks = self._collected(registry, fmt)
            if gzip:
                pending = [chunk for chunk in chunks if chunk.deflated is None]
                if self._likely_within_budget(pending) and self._compress(pending):
                    return self._member(chunks), True
                self._pending = pending
            return b"".join([chunk.data for chunk in chunks]), False

    def compress_pending(self) -> None:
        """Spend the last scrape's compression budget on the chunks it left uncompressed, after its reply."""
        with self._lock:
            chunks, self._pending = self._pending, None
            if chunks is not None:
                self._compress(chunks)

    def _likely_within_budget(self, pending: list[_Chunk]) -> bool:
        """Whether compressing ``pending`` (the chunks not deflated yet) is likely to fit this scrape's budget."""
        if self._last_gzip is None or self._deflate_cost is None:
            return True  # nothing to go by: try (the first gzip scrape has no limit anyway)
        affordable = self.gzip_share * (time.monotonic() - self._last_gzip) / self._deflate_cost  # bytes
        return sum(len(chunk.data) for chunk in pending) <= affordable

    def _collected(self, registry: Any, fmt: Format) -> list[_Chunk]:
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._chunks(registry, fmt)
        finally:
            if paused:
                gc.enable()

    def _compress(self, chunks: list[_Chunk]) -> bool:
        """Deflate the chunks not deflated yet while this scrape's compression time (thread CPU) stays within
        ``gzip_share`` of the time since the previous gzip scrape; True when every chunk is deflated.
        Prometheus every few seconds gets every chunk compressed; a scraper polling many times a second
        does not make the daemon spend its core on compressing what keeps changing."""
        level = self.gzip_level
        last, now = self._last_gzip, time.monotonic()
        budget = math.inf if last is None else self.gzip_share * (now - last)
        started = time.thread_time()
        complete = True
        deflated = 0
        for chunk in chunks:
            if chunk.deflated is None:
                if time.thread_time() - started >= budget:
                    complete = False
                    break
                chunk.deflate(level)
                deflated += len(chunk.data)
        if deflated >= 1 << 16:  # enough to time
            self._deflate_cost = (time.thread_time() - started) / deflated
        self._last_gzip = time.monotonic()
        return complete

    @staticmethod
    def _member(chunks: list[_Chunk]) -> bytes:
        """One gzip member of the chunks: each chunk's deflate, or its stored blocks when not deflated yet."""
        parts = [_GZIP_HEADER]
        crc = size = 0
        for chunk in chunks:
            data = chunk.data
            crc = zlib.crc32(data, crc)
            size += len(data)
            parts.append(chunk.deflated if chunk.deflated is not None else chunk.stored())
        parts += (_FINAL_BLOCK, struct.pack("<II", crc, size & 0xFFFFFFFF))
        return b"".join(parts)

    def _chunks(self, registry: Any, fmt: Format) -> list[_Chunk]:
        if not fmt.fast:  # a format prometheus-client knows and this renderer does not
            return [_Chunk([], fmt.encoder(registry))]
        om = fmt.openmetrics
        out: list[_Chunk] = []
        foreign: list[Metric] = []
        escapes: dict[str, str] = {}
        self._diffs = {}
        for metric in registry.collect():
            cache = self._cache(metric, fmt.escaping) if isinstance(metric, RowFamily) else None
            if cache is None:
                foreign.append(metric)
                continue
            if foreign:
                out.append(self._foreign(foreign, fmt))
                foreign = []
            out.extend(cache.chunked(metric, om, escapes, self.chunk_bytes, self._changed))
        if foreign:
            out.append(self._foreign(foreign, fmt))
        if om:
            out.append(_Chunk([], _EOF.encode()))
        return out

    def _changed(self, old: list | None, new: list) -> list[int] | None:
        """Positions of ``new`` whose record is not the very object at that position of ``old`` (records added
        at the end count as changed); None when records were dropped. Computed once per pair in a scrape:
        the families of a collection share its list of records."""
        if old is None or len(new) < len(old):
            return None
        key = (id(old), id(new))  # both lists are alive for the whole scrape
        positions = self._diffs.get(key)
        if positions is None:
            positions = list(compress(range(len(old)), map(is_not, new, old)))
            positions.extend(range(len(old), len(new)))
            self._diffs[key] = positions
        return positions

    def _cache(self, metric: RowFamily, escaping: str) -> _FamilyCache | None:
        """The family's cache; None when prometheus-client must write it (quoted UTF-8 names)."""
        key = (type(metric), metric.name, metric.labelnames, getattr(metric, "les", None), metric.documentation,
               metric.unit, escaping)
        cache = self._families.get(key)
        if cache is None:
            if escaping == ALLOWUTF8 and any(escape_metric_name(name, ALLOWUTF8).startswith('"')
                                             for name in (metric.name, *metric.sample_names())):
                return None  # a quoted name moves inside the braces: prometheus-client's encoder writes that
            cache = self._families[key] = _FamilyCache(metric, escaping)
        return cache

    @staticmethod
    def _foreign(families: list[Metric], fmt: Format) -> _Chunk:
        data = fmt.encoder(_Registry(families))
        if fmt.openmetrics and data.endswith(_EOF.encode()):
            data = data[:-len(_EOF)]
        return _Chunk([], data)


def render_text(registry: Any) -> bytes:
    """The Prometheus text format (0.0.4) of ``registry``, rendered from scratch (no cache kept)."""
    return Renderer().render(registry, TEXT)
