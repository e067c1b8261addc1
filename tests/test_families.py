"""The family table is the one declaration of every metric family: docs/metrics.md, the scrape, the
registry's name check and the state file all agree with it."""

from __future__ import annotations

import re

import pytest
from prometheus_client.registry import CollectorRegistry

from llm_log_exporter.aggregate.families import (
    COLLECTION_LABELS,
    FAMILIES,
    NAMESPACE,
    USAGE_LABELS,
    Histogram,
    Slots,
    of_naming,
)
from llm_log_exporter.exposition.collector import FamilyCollector, store_owners
from tests.helpers import FIXTURES, ROOT

DOC = ROOT / "docs" / "metrics.md"


def _documented() -> dict[str, tuple[str, tuple[str, ...], bool]]:
    """Family name → (type, label names, usage table) for every row of docs/metrics.md's tables."""
    out: dict[str, tuple[str, tuple[str, ...], bool]] = {}
    usage_table = False
    for line in DOC.read_text().splitlines():
        if line.startswith("| family |"):
            usage_table = "extra labels" in line
            continue
        if not line.startswith(("| `llm_", "| `gen_ai_")):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        kind = cells[1].split(":")[0].split(" ")[0]
        labels = tuple(
            re.match(r"\s*`([a-z_]+)`", part).group(1)  # type: ignore[union-attr]
            for part in cells[2].split(",") if re.match(r"\s*`([a-z_]+)`", part)
        )
        for name in re.findall(r"`((?:llm|gen_ai)_[a-z_]+)`", cells[0]):
            out[name] = (kind, labels, usage_table)
    return out


def _exposed(family) -> str:  # type: ignore[no-untyped-def]
    name = family.exposed("llm")
    return name + "_total" if family.type == "counter" else name


def test_docs_describe_every_family_with_its_type_and_labels() -> None:
    documented = _documented()
    for family in FAMILIES:
        name = _exposed(family)
        assert name in documented, f"docs/metrics.md has no row for {name}"
        kind, labels, usage_table = documented[name]
        assert kind == family.type, name
        base = COLLECTION_LABELS.get(getattr(family.read, "collection", ""), USAGE_LABELS)
        expected = family.labels[len(base):] if usage_table else family.labels
        assert labels == expected, (name, labels, expected)


def test_docs_name_no_family_the_table_lacks() -> None:
    declared = {_exposed(family) for family in FAMILIES}
    assert set(_documented()) <= declared, set(_documented()) - declared


@pytest.mark.parametrize("naming", ["llm", "otel"])
def test_a_scrape_shows_exactly_the_families_of_the_table(tmp_path, naming: str) -> None:  # type: ignore[no-untyped-def]
    from prometheus_client.exposition import generate_latest

    from llm_log_exporter.daemon import Config, Exporter

    exporter = Exporter(Config(files=[str(FIXTURES / "sample.jsonl")], poll=True, state_file=str(tmp_path / "s"),
                               naming=naming))
    try:
        exporter.tailer.poll_once()
        exporter.store.ready.set()
        exporter.save_state()
        text = generate_latest(exporter.registry).decode()
    finally:
        exporter.tailer.close()
    shown = {line.split()[2]: line.split()[3] for line in text.splitlines()
             if line.startswith(("# TYPE llm_", "# TYPE gen_ai_"))}
    expected = {_exposed(f): f.type for f in of_naming(naming) if f.owner != "http"}  # no server bound here
    assert shown == expected


def test_the_registry_rejects_a_name_the_table_already_uses() -> None:
    from llm_log_exporter.aggregate.store import Store
    from llm_log_exporter.aggregate.usage import Usage

    registry = CollectorRegistry(auto_describe=False)
    store = Store(Usage())
    registry.register(FamilyCollector(store_owners(store)))
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(FamilyCollector(store_owners(store)))


def test_namespace_renames_usage_families_only() -> None:
    for family in FAMILIES:
        if family.prefix == NAMESPACE:
            assert family.exposed("aigateway") == f"aigateway_{family.name}"
        else:
            assert family.exposed("aigateway") == family.exposed("llm") == f"{family.prefix}_{family.name}"
            assert family.prefix in ("llm_exporter", "gen_ai")


def test_record_families_read_declared_slots() -> None:
    from llm_log_exporter.aggregate.usage import INDEX

    for family in FAMILIES:
        if isinstance(family.read, Slots) and family.read.collection == "usage":
            assert all(slot in INDEX for _, slot in family.read.slots)
        if isinstance(family.read, Histogram) and family.read.collection == "usage":
            assert {f"{family.read.name}_{p}" for p in ("sum", "count", "buckets")} <= set(INDEX)


def test_collecting_changes_no_state() -> None:
    """A scrape reads: a breaker due to turn half-open or a stream past its timeout is shown as such,
    and the state is left exactly as the events made it (the state file and replay see the same)."""
    from llm_log_exporter.aggregate.breaker import Breakers
    from llm_log_exporter.aggregate.store import Store
    from llm_log_exporter.aggregate.usage import Usage
    from llm_log_exporter.events import Request, StreamStart

    store = Store(Usage(breakers=Breakers(threshold=2, cooldown=10), stream_timeout=100))
    usage = store.usage
    usage.apply(StreamStart(ts=0.0, call_id="s", tenant_id="t", provider="p", model="m"))
    for ts in (1.0, 2.0):
        usage.apply(Request(ts=ts, model="m", provider="p", status="failure", error_type="server_error"))
    usage.apply(Request(ts=50.0, model="m", provider="q"))  # the clock moves past the cooldown
    store.ready.set()
    collector = FamilyCollector(store_owners(store))
    before = usage.dump()
    families = {m.name: m for m in collector.collect()}
    assert usage.dump() == before
    assert [s.value for s in families["llm_circuit_breaker_state"].samples if s.labels["provider"] == "p"] == [1]
    assert families["llm_active_streams"].samples[0].value == 1
