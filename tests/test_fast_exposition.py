"""The fast text renderer gives exactly prometheus-client's bytes, for our families and any others."""

from __future__ import annotations

import json
import math
import urllib.request

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString

from llm_log_exporter.daemon import Config, Exporter
from llm_log_exporter.exposition.collector import FamilyCollector, store_owners
from llm_log_exporter.exposition.text import CounterRows, HistogramRows, format_value, render_text
from tests.helpers import FIXTURES, ExporterProcess, examples, parse_exposition

HOSTILE = ['say "hi"', "back\\slash", "new\nline", "ünïcödé ✓", "", "__other__", "a,b=c}{", "\\n"]


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


def test_exporter_families_render_identically(tmp_path) -> None:
    lines = (FIXTURES / "sample.jsonl").read_text().splitlines()
    for i, tenant in enumerate(HOSTILE):
        event = json.loads(lines[i])
        event.update(tenant_id=tenant, call_id=f"hostile-{i}", model=f"m{tenant}", ttft_s=0.2, stream=True)
        lines.append(json.dumps(event))
    path = tmp_path / "usage.jsonl"
    path.write_text("\n".join(lines) + "\n")
    exporter = Exporter(Config(files=[str(path)], poll=True))
    try:
        exporter.tailer.poll_once()
        exporter.store.ready.set()
        registry = _usage_registry(exporter)
        fast = render_text(registry)
        assert fast == generate_latest(registry)
        assert b'tenant_id="say \\"hi\\""' in fast and b'tenant_id="back\\\\slash"' in fast
        assert b"llm_time_to_first_token_seconds_bucket{" in fast
        # the full registry (process and platform collectors interleaved) parses to the same series
        assert parse_exposition(render_text(exporter.registry).decode()).keys() == parse_exposition(
            generate_latest(exporter.registry).decode()
        ).keys()
    finally:
        exporter.tailer.close()


def _pair(rows: list[tuple[str, str, float]], hist_sum: float | None, les: list[str]) -> tuple[list, list]:
    """The same data as row families and as prometheus-client families."""
    ours = [CounterRows("x_requests_total", 'doc with \\ and\nnewline "q"', labels=["zeta", "alpha"]),
            HistogramRows("x_seconds", "h", labels=["tenant", "a"]),
            CounterRows("x_plain", "no labels", labels=[])]
    theirs = [CounterMetricFamily("x_requests_total", 'doc with \\ and\nnewline "q"', labels=["zeta", "alpha"]),
              HistogramMetricFamily("x_seconds", "h", labels=["tenant", "a"]),
              CounterMetricFamily("x_plain", "no labels", labels=[])]
    for a, b, value in rows:
        for fams in (ours, theirs):
            fams[0].add_metric([a, b], value)
            buckets = [(le, abs(value) + i) for i, le in enumerate(les)]
            fams[1].add_metric([a, b], buckets, hist_sum)
    for fams in (ours, theirs):
        fams[2].add_metric([], 7.0)
    return ours, theirs


labels = st.text(max_size=12)
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**18), 10**18))


@settings(max_examples=examples(150), deadline=None)
@given(
    rows=st.lists(st.tuples(labels, labels, values), max_size=6),
    hist_sum=st.one_of(st.none(), st.floats(min_value=0, max_value=1e12)),
    negative_first=st.booleans(),
)
def test_row_families_match_prometheus_client(rows, hist_sum, negative_first) -> None:
    les = ["-1.0" if negative_first else "0.1", "2.5", "1e+06", "+Inf"]
    ours, theirs = _pair(rows, hist_sum, les)
    # interleave a foreign family to exercise the fallback path in the middle of row families
    gauge = GaugeMetricFamily("x_gauge", "g", labels=["l"])
    gauge.add_metric(["v"], 1.5)
    fast = render_text(_Static([ours[0], gauge, *ours[1:]]))
    assert fast == generate_latest(_Static([theirs[0], gauge, *theirs[1:]]))
    # samples built on demand serve every other consumer (OpenMetrics here) unchanged
    assert generate_openmetrics(_Static(ours)) == generate_openmetrics(_Static(theirs))


@given(st.one_of(st.floats(), st.integers(-(10**30), 10**30)))
def test_format_value_is_float_to_go_string(value) -> None:
    assert format_value(value) == floatToGoString(value)


def test_format_value_edges() -> None:
    for value in (0, -0.0, 999_999.9999, 1e6, 1234567.0, 1e16, 1.5e16, math.inf, -math.inf, math.nan, 5e-324):
        assert format_value(value) == floatToGoString(value), value


def test_daemon_serves_fast_text_and_openmetrics(tmp_path) -> None:
    """Through the real daemon: the text format parses to the usual series; OpenMetrics still negotiates."""
    path = tmp_path / "usage.jsonl"
    path.write_text((FIXTURES / "sample.jsonl").read_text())
    with ExporterProcess(["--file", str(path)]) as proc:
        proc.wait_ready()
        samples = proc.scrape()
        assert sum(v for (name, _), v in samples.items() if name == "llm_requests_total") == 60
        request = urllib.request.Request(
            f"{proc.url}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read().decode()
            assert reply.headers["Content-Type"].startswith("application/openmetrics-text")
        assert body.endswith("# EOF\n") and "llm_request_duration_seconds_bucket{" in body


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
