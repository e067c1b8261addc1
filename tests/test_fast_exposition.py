"""The renderer gives exactly prometheus-client's bytes, in every negotiated format, scrape after scrape.

Its caches (series lines, chunks, compressed chunks) must never show a stale value: each test renders
sequences of changing states through one renderer and compares every scrape with prometheus-client's
own encoder over the same families.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.registry import CollectorRegistry
from prometheus_client.samples import Exemplar, Timestamp
from prometheus_client.utils import floatToGoString

from llm_log_exporter.aggregate.usage import RecordCopies
from llm_log_exporter.daemon import Config, Exporter
from llm_log_exporter.exposition import render, text
from llm_log_exporter.exposition.collector import FamilyCollector, store_owners
from llm_log_exporter.exposition.render import OPENMETRICS, TEXT, Renderer, negotiate, render_text
from llm_log_exporter.exposition.text import CounterRows, GaugeRows, HistogramRows, RowFamily, format_value
from tests.helpers import FIXTURES, append, examples, parse_exposition, request_line

HOSTILE = ['say "hi"', "back\\slash", "new\nline", "ünïcödé ✓", "", "__other__", "a,b=c}{", "\\n", "# EOF"]
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
ACCEPTS = [
    PROMETHEUS_ACCEPT,
    "text/plain; version=0.0.4",
    "*/*",
    "application/openmetrics-text; version=1.0.0; escaping=allow-utf-8",
    "application/openmetrics-text; version=1.0.0; escaping=dots",
    "text/plain; version=1.0.0; escaping=values",
    "text/plain; version=1.0.0; escaping=allow-utf-8",
]


class _Static:
    def __init__(self, families: list) -> None:
        self.families = families

    def collect(self) -> list:
        return self.families


def _usage_registry(exporter: Exporter) -> CollectorRegistry:
    """Only the usage collector: process metrics change between two encodes, usage does not."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FamilyCollector(store_owners(exporter.store), "llm"))
    return registry


def _hostile_log(tmp_path) -> str:
    lines = (FIXTURES / "sample.jsonl").read_text().splitlines()
    for i, tenant in enumerate(HOSTILE):
        event = json.loads(lines[i])
        event.update(tenant_id=tenant, call_id=f"hostile-{i}", model=f"m{tenant}", ttft_s=0.2, stream=True)
        lines.append(json.dumps(event))
    path = tmp_path / "usage.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_exporter_families_render_like_prometheus_client_in_every_format(tmp_path) -> None:
    path = _hostile_log(tmp_path)
    exporter = Exporter(Config(files=[path], poll=True))
    renderer = Renderer()
    try:
        exporter.tailer.poll_once()
        exporter.store.ready.set()
        registry = _usage_registry(exporter)
        for accept in ACCEPTS:
            fmt = negotiate(accept)
            assert renderer.render(registry, fmt) == fmt.encoder(registry), accept
        text = renderer.render(registry, TEXT)
        assert b'tenant_id="say \\"hi\\""' in text and b'tenant_id="back\\\\slash"' in text
        assert b"llm_time_to_first_token_seconds_bucket{" in text
        # new lines arrive: the same renderer shows them (and only cached lines that did not change)
        with open(path, "a") as f:
            f.write((FIXTURES / "sample.jsonl").read_text())
        exporter.tailer.poll_once()
        for accept in ACCEPTS:
            fmt = negotiate(accept)
            assert renderer.render(registry, fmt) == fmt.encoder(registry), accept
        # the full registry (process and platform collectors interleaved) parses to the same series
        full = renderer.render(exporter.registry, TEXT).decode()
        assert parse_exposition(full).keys() == parse_exposition(generate_latest(exporter.registry).decode()).keys()
    finally:
        exporter.tailer.close()


# ----------------------------------------------------------------- any rows, any format, several scrapes

labels = st.sampled_from(["a", "b", 'q"', "x\\y", "n\nl", "ü", ""])  # few values: series recur between scrapes
values = st.one_of(st.sampled_from([0.0, -0.0, 1.0, 2, math.inf, -math.inf, math.nan, 1e6, 123456789.0]),
                   st.floats(allow_nan=False, min_value=-1e20, max_value=1e20), st.integers(-(10**18), 10**18))
exemplars = st.one_of(st.none(), st.builds(
    Exemplar, st.dictionaries(st.sampled_from(["trace_id", "span_id"]), st.text(max_size=8), max_size=2),
    st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=1e6),
    st.one_of(st.none(), st.floats(min_value=0, max_value=2e9))))
scrape = st.fixed_dictionaries({
    "counters": st.dictionaries(st.tuples(labels, labels), st.tuples(values, exemplars), max_size=6),
    "gauges": st.dictionaries(labels, values, max_size=3),
    "histograms": st.dictionaries(st.tuples(labels, labels), st.tuples(
        st.lists(st.integers(0, 5), min_size=4, max_size=4), st.one_of(st.none(), st.floats(0, 1e12)),
        st.one_of(st.none(), st.lists(exemplars, min_size=4, max_size=4))), max_size=4),
    "plain": values,
})


def _families(state: dict, les: list[str], from_records: bool) -> tuple[list, list]:
    """The same data as row families (rows added, or made from records) and as prometheus-client families."""
    doc = 'doc with \\ and\nnewline "q"'
    ours = [CounterRows("x_requests_total", doc, labels=["zeta", "alpha"]), GaugeRows("x_gauge", "g", labels=["l"]),
            HistogramRows("x_seconds", "h", labels=["tenant", "a"], les=les), CounterRows("x_plain", "p", labels=[])]
    theirs = [CounterMetricFamily("x_requests_total", doc, labels=["zeta", "alpha"]),
              GaugeMetricFamily("x_gauge", "g", labels=["l"]),
              HistogramMetricFamily("x_seconds", "h", labels=["tenant", "a"]),
              CounterMetricFamily("x_plain", "p", labels=[])]
    for key, (value, exemplar) in state["counters"].items():
        ours[0].add_metric(key, value, exemplar)
        theirs[0].add_metric(key, value, exemplar=exemplar)
    for key, value in state["gauges"].items():
        for fam in (ours[1], theirs[1]):
            fam.add_metric([key], value)
    for key, (counts, sum_value, bucket_exemplars) in state["histograms"].items():
        ours[2].add_metric(key, counts, sum_value, bucket_exemplars)
        cumulative = [sum(counts[:i + 1]) for i in range(len(counts))]
        triples = [(le, n, *([bucket_exemplars[i]] if bucket_exemplars and bucket_exemplars[i] else []))
                   for i, (le, n) in enumerate(zip(les, cumulative, strict=True))]
        theirs[2].add_metric(key, triples, sum_value)
    for fams in (ours, theirs):
        fams[3].add_metric([], state["plain"])
    if from_records:  # as the collector makes them: rows from records, skipped when a range is unchanged
        counters = [(key, [value, exemplar]) for key, (value, exemplar) in state["counters"].items()]
        ours[0].from_records(counters, lambda key, values: [(key, *values)])
        histograms = [(key, [list(counts), sum_value, exemplars])
                      for key, (counts, sum_value, exemplars) in state["histograms"].items()]
        ours[2].from_records(histograms, lambda key, values: [(key, *values)] if sum(values[0]) else [])
        theirs[2] = HistogramMetricFamily("x_seconds", "h", labels=["tenant", "a"])
        for key, (counts, sum_value, bucket_exemplars) in state["histograms"].items():
            if sum(counts):
                cumulative = [sum(counts[:i + 1]) for i in range(len(counts))]
                theirs[2].add_metric(key, [(le, n, *([bucket_exemplars[i]] if bucket_exemplars and
                                                    bucket_exemplars[i] else []))
                                           for i, (le, n) in enumerate(zip(les, cumulative, strict=True))], sum_value)
    return ours, theirs


@settings(max_examples=examples(75), deadline=None)
@given(states=st.lists(scrape, min_size=1, max_size=4), negative_first=st.booleans(),
       accept=st.sampled_from(ACCEPTS), chunk_bytes=st.sampled_from([1, 64, 16_384]), from_records=st.booleans())
def test_row_families_match_prometheus_client_scrape_after_scrape(states, negative_first, accept, chunk_bytes,
                                                                  from_records) -> None:
    les = ["-1.0" if negative_first else "0.1", "2.5", "1e+06", "+Inf"]
    fmt = negotiate(accept)
    renderer = Renderer(chunk_bytes=chunk_bytes)
    foreign = GaugeMetricFamily("x_foreign", "not a row family", labels=["l"])
    foreign.add_metric(["v"], 1.5)
    for state in states:
        ours, theirs = _families(state, les, from_records)
        expected = fmt.encoder(_Static([theirs[0], foreign, *theirs[1:]]))
        assert renderer.render(_Static([ours[0], foreign, *ours[1:]]), fmt) == expected
        compressed = renderer.render(_Static([ours[0], foreign, *ours[1:]]), fmt, gzip=True)
        assert gzip.decompress(compressed) == expected
        # one gzip member, as a strict single-member reader (Go's, curl's) sees it
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        assert member.decompress(compressed) == expected and member.eof and not member.unused_data
        # samples built on demand serve every other consumer (replay's backfill) unchanged
        assert [f.samples for f in ours] == [f.samples for f in theirs]


# One scrape's change to a collection of records, as the collector hands them over: a record that did not
# change is the very same object as last scrape; changed ones are new objects; records come and go anywhere.
record_edit = st.tuples(st.sampled_from(["keep", "change", "add", "drop"]), st.integers(0, 40), st.integers(0, 9))


@settings(max_examples=examples(60), deadline=None)
@given(edits=st.lists(st.lists(record_edit, max_size=12), min_size=1, max_size=6),
       chunk_bytes=st.sampled_from([1, 64, 300, 4096]), accept=st.sampled_from(ACCEPTS))
def test_records_kept_changed_added_and_dropped_between_scrapes_render_like_prometheus_client(
        edits, chunk_bytes, accept) -> None:
    """The renderer reuses what did not change by the identity of records at their positions (one list per
    collection, shared by its families): whatever moves between scrapes, the output is prometheus-client's."""
    les = ["0.5", "1.0", "+Inf"]
    fmt = negotiate(accept)
    renderer = Renderer(chunk_bytes=chunk_bytes)
    records = [((f"k{i}",), [i % 4, [i % 2, 1, i % 3]]) for i in range(20)]
    serial = 100
    for scrape_edits in edits:
        records = list(records)  # a new list each scrape, as the collector makes
        for action, at, value in scrape_edits:
            at = at % (len(records) + 1)
            serial += 1
            if action == "change" and at < len(records):
                records[at] = (records[at][0], [value, [value % 3, value % 2, 1]])
            elif action == "add":
                records.insert(at, ((f"n{serial}",), [value, [1, value % 4, 0]]))
            elif action == "drop" and at < len(records):
                del records[at]
        counters = CounterRows("x_calls_total", "c", labels=["k"])
        counters.from_records(records, lambda key, values: [(key, values[0], None)])
        histograms = HistogramRows("x_seconds", "h", labels=["k"], les=les)
        histograms.from_records(records, lambda key, values: [(key, values[1], float(sum(values[1])), None)])
        theirs_c = CounterMetricFamily("x_calls", "c", labels=["k"])
        theirs_h = HistogramMetricFamily("x_seconds", "h", labels=["k"])
        for key, values in records:
            theirs_c.add_metric(key, values[0])
            cumulative = [sum(values[1][:i + 1]) for i in range(len(les))]
            theirs_h.add_metric(key, list(zip(les, cumulative, strict=True)), float(sum(values[1])))
        expected = fmt.encoder(_Static([theirs_c, theirs_h]))
        assert renderer.render(_Static([counters, histograms]), fmt) == expected
        assert gzip.decompress(renderer.render(_Static([counters, histograms]), fmt, gzip=True)) == expected


def test_openmetrics_carries_exemplars_the_text_format_leaves_out() -> None:
    counter = CounterRows("x_cost_usd", "c", labels=["tenant_id"])
    counter.add_metric(["acme"], 0.25, Exemplar({"trace_id": "abc"}, 0.25, 1700000000.5))
    histogram = HistogramRows("x_seconds", "h", labels=["tenant_id"], les=["0.5", "+Inf"])
    histogram.add_metric(["acme"], [1, 0], 0.3, [Exemplar({"trace_id": "abc"}, 0.3), None])
    renderer = Renderer()
    om = renderer.render(_Static([counter, histogram]), OPENMETRICS).decode()
    families = {f.name: f for f in parse_openmetrics(om)}
    [cost] = families["x_cost_usd"].samples
    assert cost.exemplar == Exemplar({"trace_id": "abc"}, 0.25, Timestamp(1700000000, 500_000_000))
    buckets = [s for s in families["x_seconds"].samples if s.name == "x_seconds_bucket"]
    assert [s.exemplar for s in buckets] == [Exemplar({"trace_id": "abc"}, 0.3), None]
    text = renderer.render(_Static([counter, histogram]), TEXT).decode()
    assert "trace_id" not in text and "x_cost_usd_total" in text
    with pytest.raises(ValueError):
        GaugeRows("x_gauge", "g", labels=[]).add_metric([], 1.0, Exemplar({}, 1.0))


@given(st.one_of(st.floats(), st.integers(-(10**30), 10**30)))
def test_format_value_is_float_to_go_string(value) -> None:
    assert format_value(value) == floatToGoString(value)


def test_format_value_edges() -> None:
    for value in (0, -0.0, 999_999.9999, 1e6, 1234567.0, 1e16, 1.5e16, math.inf, -math.inf, math.nan, 5e-324):
        assert format_value(value) == floatToGoString(value), value


def test_render_restores_the_collector_state() -> None:
    import gc

    family = CounterRows("x", "d", labels=["a"])
    family.add_metric(["v"], 1)
    assert gc.isenabled()
    render_text(_Static([family]))
    assert gc.isenabled()
    gc.disable()
    try:
        render_text(_Static([family]))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_unchanged_records_are_handed_over_as_the_same_objects_and_changed_ones_anew(tmp_path) -> None:
    path = tmp_path / "usage.jsonl"
    path.write_bytes(b"".join(request_line(model=f"m{i}", tokens=i + 1) for i in range(3)))
    exporter = Exporter(Config(files=[str(path)], poll=True))
    exporter.tailer.poll_once()
    usage = exporter.store.usage
    copies = RecordCopies()
    first = usage.copy_records(copies)
    again = usage.copy_records(copies)
    assert again == first and all(a is b for a, b in zip(again, first, strict=True))
    append(path, request_line(model="m1", tokens=5))
    exporter.tailer.poll_once()
    second = usage.copy_records(copies)
    assert [a is b for a, b in zip(second, first, strict=True)] == [True, False, True]
    assert second[1][1] != first[1][1] and second == usage.copy_records()  # a fresh copy of the changed one
    append(path, request_line(model="m0", tokens=1) + request_line(model="m9", tokens=9))
    exporter.tailer.poll_once()
    exporter.tailer.close()
    third = usage.copy_records(copies)  # a record made since comes last, where the store keeps it
    assert [a is b for a, b in zip(third, second, strict=False)] == [False, True, True]
    assert [key[2] for key, _ in third] == ["m0", "m1", "m2", "m9"] and third == usage.copy_records()
    other = RecordCopies()  # a second reader copies everything, and so does the first one after it
    assert usage.copy_records(other) == third
    assert not any(a is b for a, b in zip(usage.copy_records(copies), third, strict=True))


def _usage_of_300_calls(tmp_path) -> tuple:
    path = tmp_path / "usage.jsonl"
    path.write_bytes(b"".join(request_line(model=f"m{i}", tokens=i + 1, tenant_id=f"t{i % 7}", duration_s=0.3)
                              for i in range(300)))
    exporter = Exporter(Config(files=[str(path)], poll=True))
    exporter.tailer.poll_once()
    exporter.store.ready.set()
    return path, exporter, _usage_registry(exporter)


def _a_third_change(path, exporter) -> None:
    append(path, b"".join(request_line(model=f"m{i}", tokens=2, tenant_id=f"t{i % 7}") for i in range(0, 300, 3)))
    exporter.tailer.poll_once()
    exporter.tailer.close()


def test_gzip_past_its_compression_budget_sends_new_chunks_stored_and_compresses_them_on_a_later_scrape(
        tmp_path) -> None:
    path, exporter, registry = _usage_of_300_calls(tmp_path)
    renderer = Renderer(chunk_bytes=512, gzip_share=0.0)  # no time to compress anything not compressed yet
    first = renderer.render(registry, OPENMETRICS, gzip=True)  # the first scrape compresses everything
    _a_third_change(path, exporter)
    plain = renderer.render(registry, OPENMETRICS)
    churned = renderer.render(registry, OPENMETRICS, gzip=True)
    renderer.gzip_share = 1e9  # a scraper that comes back later: time enough to compress what stayed
    settled = renderer.render(registry, OPENMETRICS, gzip=True)
    for body in (churned, settled):  # one valid gzip member either way, as a strict reader sees it
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        assert member.decompress(body) == plain and member.eof and not member.unused_data
    assert gzip.decompress(first) != plain  # the counts moved
    assert len(settled) < len(churned) * 2 / 3 and len(churned) > len(plain) / 3  # the changed chunks: stored, then not


def test_a_scrape_past_its_compression_budget_is_sent_uncompressed_and_a_later_one_gzip(tmp_path) -> None:
    """What the server sends: gzip when every chunk is compressed within the budget; otherwise the plain body
    (stored blocks would cost a CRC and a copy and save nothing), while the budget compresses for later."""
    path, exporter, registry = _usage_of_300_calls(tmp_path)
    renderer = Renderer(chunk_bytes=512, gzip_share=0.0)
    body, compressed = renderer.scrape(registry, OPENMETRICS, gzip=True)  # the first scrape has no budget limit
    assert compressed and gzip.decompress(body) == renderer.render(registry, OPENMETRICS)
    _a_third_change(path, exporter)
    plain = renderer.render(registry, OPENMETRICS)
    assert renderer.scrape(registry, OPENMETRICS) == (plain, False)  # no gzip asked
    assert renderer.scrape(registry, OPENMETRICS, gzip=True) == (plain, False)  # no time to compress the new chunks
    renderer.gzip_share = 1e9  # a scraper that comes back later: time enough
    body, compressed = renderer.scrape(registry, OPENMETRICS, gzip=True)
    member = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert compressed and member.decompress(body) == plain and member.eof and not member.unused_data
    assert len(body) < len(plain) / 2


def test_a_scrape_past_its_budget_goes_out_before_compressing_and_the_budget_is_spent_after_the_reply(
        tmp_path) -> None:
    path, exporter, registry = _usage_of_300_calls(tmp_path)
    renderer = Renderer(chunk_bytes=512)
    body, compressed = renderer.scrape(registry, OPENMETRICS, gzip=True)
    assert compressed
    _a_third_change(path, exporter)
    renderer.gzip_share = 0.0  # a scraper polling again at once: no time to compress what changed
    body, compressed = renderer.scrape(registry, OPENMETRICS, gzip=True)
    pending = renderer._pending
    assert not compressed and body == renderer.render(registry, OPENMETRICS)
    assert pending is not None and sum(chunk.deflated is None for chunk in pending) > 1  # not compressed before
    renderer.gzip_share = 1e9  # the server calls this once the reply is out; time enough now
    renderer.compress_pending()
    assert renderer._pending is None and all(chunk.deflated is not None for chunk in pending)
    body, compressed = renderer.scrape(registry, OPENMETRICS, gzip=True)
    assert compressed and gzip.decompress(body) == renderer.render(registry, OPENMETRICS)


def test_a_record_changed_in_slots_a_family_does_not_show_keeps_that_familys_chunk_and_its_compression(
        tmp_path) -> None:
    path, exporter, registry = _usage_of_300_calls(tmp_path)
    renderer = Renderer(chunk_bytes=512)
    renderer.scrape(registry, OPENMETRICS, gzip=True)  # every chunk compressed
    families = {key[1]: cache for key, cache in renderer._families.items()}
    names = ("llm_request_duration_seconds", "llm_tokens")
    before = {name: list(families[name].record_chunks[True]) for name in names}
    append(path, request_line(model="m5", tokens=7, tenant_id="t5"))  # tokens and requests, no duration
    exporter.tailer.poll_once()
    exporter.tailer.close()
    body, compressed = renderer.scrape(registry, OPENMETRICS, gzip=True)
    after = {name: families[name].record_chunks[True] for name in before}
    assert all(a is b for a, b in zip(after["llm_request_duration_seconds"], before["llm_request_duration_seconds"],
                                      strict=True))
    assert [a is b for a, b in zip(after["llm_tokens"], before["llm_tokens"], strict=True)].count(False) == 1
    assert compressed and gzip.decompress(body) == renderer.render(registry, OPENMETRICS)
    assert gzip.decompress(body) == Renderer().render(registry, OPENMETRICS)  # what a fresh renderer writes
    assert renderer.render(registry, TEXT) == Renderer().render(registry, TEXT)  # and the other format too


def _counting_rows(monkeypatch) -> dict[str, int]:
    """How many records each family made rows of, from now on (by family name)."""
    made: dict[str, int] = {}
    from_records = RowFamily.from_records

    def counted(self, records, make, watch=None) -> None:
        def counting(key, values):
            made[self.name] = made.get(self.name, 0) + 1
            return make(key, values)
        from_records(self, records, counting, watch)

    monkeypatch.setattr(RowFamily, "from_records", counted)
    return made


def test_a_record_changed_in_slots_a_family_does_not_show_makes_no_rows_of_that_family(tmp_path,
                                                                                      monkeypatch) -> None:
    path, exporter, registry = _usage_of_300_calls(tmp_path)
    renderer = Renderer(chunk_bytes=512)
    for fmt in (OPENMETRICS, TEXT):
        renderer.scrape(registry, fmt)
    made = _counting_rows(monkeypatch)
    append(path, request_line(model="m5", tokens=7, tenant_id="t5"))  # tokens and requests, no duration
    exporter.tailer.poll_once()
    exporter.tailer.close()
    for fmt in (OPENMETRICS, TEXT):
        renderer.scrape(registry, fmt)
    assert made.get("llm_tokens", 0) == 2 and made.get("llm_requests", 0) == 2  # the changed record, per format
    assert "llm_request_duration_seconds" not in made and "llm_cost_usd" not in made
    assert renderer.render(registry, OPENMETRICS) == Renderer().render(registry, OPENMETRICS)
    assert renderer.render(registry, TEXT) == Renderer().render(registry, TEXT)


def test_a_histogram_rendered_again_makes_exemplar_texts_only_for_buckets_with_a_new_exemplar(tmp_path,
                                                                                              monkeypatch) -> None:
    path = tmp_path / "usage.jsonl"
    durations = (0.05, 0.2, 0.4, 0.8, 2.0, 4.0)  # six buckets, each with its exemplar
    path.write_bytes(b"".join(request_line(call_id=f"c{i}", trace_id=f"t{i}", duration_s=d, cost_usd=0.01)
                              for i, d in enumerate(durations)))
    exporter = Exporter(Config(files=[str(path)], poll=True))
    exporter.tailer.poll_once()
    exporter.store.ready.set()
    registry = _usage_registry(exporter)
    renderer = Renderer()
    renderer.scrape(registry, OPENMETRICS)
    made: list[str] = []
    exemplar_text = text.exemplar_text
    monkeypatch.setattr(render, "exemplar_text", lambda kept: made.append(kept[0]) or exemplar_text(kept))
    append(path, request_line(call_id="new", trace_id="tn", duration_s=0.21, cost_usd=0.01))
    exporter.tailer.poll_once()
    exporter.tailer.close()
    body = renderer.render(registry, OPENMETRICS)
    assert sorted(made) == ["new", "new"]  # the 0.25 bucket's and the cost's, no other
    assert body == Renderer().render(registry, OPENMETRICS)
    duration = {f.name: f for f in parse_openmetrics(body.decode())}["llm_request_duration_seconds"]
    exemplars = [s.exemplar.labels["call_id"] for s in duration.samples if s.exemplar is not None]
    assert exemplars == ["c0", "new", "c2", "c3", "c4", "c5"]


def test_scrape_after_scrape_of_random_calls_in_both_formats_equals_what_prometheus_client_writes(tmp_path) -> None:
    """The caches (kept lines per record and family, ranges skipped when a family's slots did not move, exemplar
    texts per bucket) against the plain truth, over calls that move different slots each time."""
    rng = random.Random(7)
    path, exporter, registry = _usage_of_300_calls(tmp_path)
    renderer = Renderer(chunk_bytes=512)

    def call(n: int) -> bytes:
        fields: dict[str, object] = {"call_id": f"r{n}", "tenant_id": f"t{rng.randrange(7)}"}
        kind = rng.randrange(5)
        if kind == 0:
            fields.update(duration_s=rng.choice([0.05, 0.3, 0.7, 3.0]), trace_id=f"tr{n}")
        elif kind == 1:
            fields.update(cost_usd=rng.choice([0.001, 0.02]), cached_tokens=rng.randrange(3))
        elif kind == 2:
            fields.update(status="failure", error_type="rate_limit")
        elif kind == 3:
            fields.update(stream=True, duration_s=1.5, ttft_s=0.2, completion_tokens=rng.randrange(2, 50))
        return request_line(model=f"m{rng.randrange(300)}", tokens=rng.randrange(1, 9), **fields)

    n = 0
    for _ in range(14):
        append(path, b"".join(call(n + i) for i in range(rng.randrange(1, 6))))
        n += 6
        exporter.tailer.poll_once()
        fmt = rng.choice([OPENMETRICS, TEXT])
        body, compressed = renderer.scrape(registry, fmt, gzip=rng.random() < 0.5)
        assert (gzip.decompress(body) if compressed else body) == fmt.encoder(registry)  # prometheus-client's
    exporter.tailer.close()
