"""Hostile input, fuzzed: every registered parser, the Ingestor and the line splitter.

Invariants: no exception other than ``InvalidLine`` leaves a parser; nothing escapes
``Ingestor.on_lines``; a line that is rejected or skipped leaves every usage aggregate exactly as it
was; a batch gives the same state as its lines one by one (a bad neighbour loses nothing valid); the
tailer delivers exactly the complete lines of arbitrary bytes and never holds more than
``max_line_bytes`` of a partial line.

Parsers come from the registry and seed objects from every fixture file, so a format added later
(with its fixture) is fuzzed without touching this file. Derandomized, so CI is deterministic.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_log_exporter.aggregate.ingest import Ingestor
from llm_log_exporter.aggregate.store import Store
from llm_log_exporter.aggregate.usage import Usage
from llm_log_exporter.events import InvalidLine
from llm_log_exporter.parsers import AUTO, FORMATS, get_parser
from llm_log_exporter.tailer import Tailer
from tests.helpers import FIXTURES, examples

FUZZ = settings(
    max_examples=examples(150), deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _fixture_objects() -> list[dict[str, Any]]:
    """Distinct JSON objects from every fixture file (the seeds that reach deep into each parser)."""
    seen: dict[bytes, dict[str, Any]] = {}
    for path in sorted(FIXTURES.rglob("*.json*")):
        taken = 0
        for raw in path.read_bytes().splitlines():
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if type(obj) is dict and taken < 25:  # a few from every file, so every format is seeded
                taken += 1
                seen.setdefault(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS), obj)
    return list(seen.values())[:300]


SEEDS = _fixture_objects()


def _keys(values: list[Any], out: set[str]) -> set[str]:
    for v in values:
        if isinstance(v, dict):
            out.update(v)
            _keys(list(v.values()), out)
        elif isinstance(v, list):
            _keys(v, out)
    return out


KEYS = sorted(_keys(SEEDS, set()) | {"v", "event", "model", "ts"})

scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: huge ints too
    | st.sampled_from([-1, 0, 1, 2**53, 2**53 + 1, 2**63, 2**64, -(2**63), 10**30, True, False])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["", "success", "failure", "request", "1", "2026-11-23T12:00:00Z", "NaN", "\x00", "é" * 300])
)
values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), kids,
                                                              max_size=4),
    max_leaves=12,
)


_ALIKE = {
    int: st.integers() | st.integers(0, 10**6),
    float: st.floats(allow_nan=True, allow_infinity=True) | st.floats(0, 1e6),
    str: st.text() | st.text(min_size=100, max_size=2000) | st.text(st.characters(max_codepoint=31)),
    bool: st.booleans(),
}


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A real fixture object with keys replaced, deleted or added (at the top or one level down)."""
    obj = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        target = obj
        nested = [k for k, v in obj.items() if isinstance(v, dict) and v]
        if nested and draw(st.booleans()):
            target = obj[draw(st.sampled_from(sorted(nested)))]
        op = draw(st.sampled_from(["alike", "alike", "alike", "set", "delete", "add"]))
        if op == "delete" and target:
            del target[draw(st.sampled_from(sorted(target)))]
        elif op == "alike" and target:  # same JSON type, hostile value: long or odd text, huge or negative numbers
            key = draw(st.sampled_from(sorted(target)))
            target[key] = draw(_ALIKE.get(type(target[key]), values))
        elif op == "set" and target:
            target[draw(st.sampled_from(sorted(target)))] = draw(values)
        else:
            target[draw(st.sampled_from(KEYS))] = draw(values)
    return obj


objects = mutated() | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), values, max_size=8)


def _check_events(events: Any) -> None:
    assert isinstance(events, list)
    for event in events:
        for name, value in event._asdict().items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            assert math.isfinite(value), (name, value)
            if name != "ts":
                assert value >= 0, (name, value)


def test_seeds_cover_every_format() -> None:
    """Each registered format detects at least one fixture object, so the mutations reach its parser."""
    for name, module in FORMATS.items():
        assert any(module.detect(obj) for obj in SEEDS), f"add a fixture line for format {name!r}"


@pytest.mark.parametrize("fmt", [*FORMATS, AUTO])
@FUZZ
@given(obj=objects)
def test_parser_raises_only_invalid_line(fmt: str, obj: dict[str, Any]) -> None:
    parse = get_parser(fmt)
    if fmt != AUTO:
        FORMATS[fmt].detect(obj)  # must not raise either
    try:
        events = parse(obj)
    except InvalidLine as err:
        assert err.reason and err.reason.isidentifier()
        return
    _check_events(events)


# ------------------------------------------------------------------------------------------
# Ingestor: raw lines, one at a time and in batches
# ------------------------------------------------------------------------------------------


def _ingestor(fmt: str = AUTO) -> Ingestor:
    return Ingestor(Store(Usage(max_tenants=5, max_models=5, max_providers=5)), get_parser(fmt))


def _plain(value: Any) -> Any:
    """A comparable deep copy: containers and objects (their attributes) down to scalars."""
    if value is None or isinstance(value, (str, bytes, int, float)):
        return value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(map(repr, value))
    if callable(value):
        return None
    attrs = getattr(value, "__dict__", None)
    if attrs is None:
        attrs = {name: getattr(value, name) for name in getattr(value, "__slots__", ())}
    return {"__type__": type(value).__name__, **{k: _plain(v) for k, v in attrs.items()}}


def usage_state(store: Store) -> dict[str, Any]:
    """Every aggregate of the usage state (records, label guards, anything added later), not caches."""
    return {k: _plain(v) for k, v in vars(store.usage).items() if k not in ("_keys", "handlers")}


def _hostile_text(obj: dict[str, Any], trick: str) -> bytes:
    text = json.dumps(obj, allow_nan=True, ensure_ascii=False)
    if trick == "duplicate" and len(text) > 2:  # the same keys again with other values: orjson keeps the last
        return (text[:-1] + ',"prompt_tokens":-5,"model":7,"v":1}').encode()
    if trick == "deep":
        return (text[:-1] + ',"prompt_tokens":' + "[" * 5000 + "]" * 5000 + "}").encode()
    if trick == "huge":
        return (text[:-1] + ',"cost_usd":1e999,"prompt_tokens":' + "9" * 400 + "}").encode()
    if trick == "nul":
        return text.encode() + b"\x00"
    return text.encode("utf-8", "surrogatepass")


lines = (
    st.builds(_hostile_text, mutated(), st.just("plain"))
    | st.builds(_hostile_text, objects, st.sampled_from(["plain", "duplicate", "deep", "huge", "nul"]))
    | st.binary(max_size=64)
    | st.sampled_from(
        [b"", b"\r", b"{}", b"[]", b"null", b"1e999", b'"x"', b"\xef\xbb\xbf{}", b'{"v":1,"model":"m"}\r']
    )
).map(lambda b: b.replace(b"\n", b" "))


def _apply(ing: Ingestor, batch: list[bytes]) -> None:
    ing.on_lines("f.jsonl", batch, 1, 0)


@FUZZ
@given(line=lines)
def test_rejected_line_adds_nothing(line: bytes) -> None:
    ing = _ingestor()
    _apply(ing, [b'{"v":1,"model":"warm","tenant_id":"t","prompt_tokens":3}'])  # non-empty state to compare
    before = usage_state(ing.store)
    counts = dict(ing.store.files["f.jsonl"].lines)
    _apply(ing, [line])
    after = dict(ing.store.files["f.jsonl"].lines)
    delta = {k: after[k] - counts[k] for k in after}
    assert sorted(delta.values()) == [0, 0, 1], delta  # exactly one verdict per line
    if not delta["parsed"]:
        assert usage_state(ing.store) == before


@FUZZ
@given(batch=st.lists(lines, max_size=12))
def test_batch_equals_line_by_line(batch: list[bytes]) -> None:
    together, apart = _ingestor(), _ingestor()
    _apply(together, batch)
    for line in batch:
        _apply(apart, [line])
    assert usage_state(together.store) == usage_state(apart.store)
    if batch:
        stats = together.store.files["f.jsonl"]
        assert sum(stats.lines.values()) == len(batch)
        assert stats.lines == apart.store.files["f.jsonl"].lines
        assert stats.invalid == apart.store.files["f.jsonl"].invalid


def test_known_hostile_lines_are_counted_by_reason() -> None:
    ing = _ingestor()
    good = b'{"v":1,"model":"m","prompt_tokens":1}'
    batch = [
        good,
        b'{"v":1,"event":[],"model":"m"}',  # unhashable event kind
        b'{"v":1,"event":{"a":1},"model":"m"}',
        b'{"v":1,"model":"m","prompt_tokens":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"v":1,"model":"m","prompt_tokens":NaN}',
        b'{"v":1,"model":"m","cost_usd":1e999}',
        b'{"v":1,"model":"m","prompt_tokens":5,"prompt_tokens":-5}',  # duplicate key: the last wins
        b'{"v":1,"model":"m","prompt_tokens":' + b"9" * 30 + b"}",
        good,
    ]
    _apply(ing, batch)
    stats = ing.store.files["f.jsonl"]
    assert stats.lines == {"parsed": 2, "skipped": 0, "invalid": 7}
    # Nesting too deep is refused by the decoder itself in some orjson releases (not_json) and by the
    # parser in others (too_deep): either way it is one invalid line under a documented reason.
    deep = {reason: n for reason, n in stats.invalid.items() if reason in ("too_deep", "not_json")}
    assert sum(deep.values()) == 3, stats.invalid  # the deep line and the two NaN / 1e999 lines
    assert stats.invalid == {"bad_field": 4, **deep}
    assert sum(rec[0] for rec in ing.store.usage.records.values()) == 2


def _unhashable_variants(obj: Any) -> list[Any]:
    """``obj`` with one value at a time (top level and one level down) replaced by ``[]`` and ``{}``."""
    out = []
    for key, value in obj.items():
        for hostile in ([], {}, [[]], {"": []}):
            out.append({**obj, key: hostile})
        if isinstance(value, dict):
            for inner in value:
                for hostile in ([], {}):
                    out.append({**obj, key: {**value, inner: hostile}})
    return out


@pytest.mark.parametrize("fmt", [*FORMATS, AUTO])
def test_unhashable_values_anywhere_are_rejected_not_crashes(fmt: str) -> None:
    """A list or object where a parser expects a scalar (``{"result":{"type":[]}}``) is an invalid line:
    every parser type-checks before any set or dict lookup, as the native one does."""
    parse = get_parser(fmt)
    tried = 0
    for seed in SEEDS:
        for obj in _unhashable_variants(seed):
            tried += 1
            try:
                _check_events(parse(obj))
            except InvalidLine as err:
                assert err.reason.isidentifier()
    assert tried > 1000


# ------------------------------------------------------------------------------------------
# Line splitter: arbitrary bytes written in arbitrary pieces to a real file
# ------------------------------------------------------------------------------------------


@settings(max_examples=examples(80), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    pieces=st.lists(
        st.lists(lines, max_size=4).map(lambda ls: b"\n".join(ls)) | st.binary(max_size=40)
        | st.sampled_from([b"\n", b"\r\n", b"\n\n", b"x" * 70]),
        max_size=25,
    ),
    read_chunk=st.sampled_from([1, 7, 64, 4096]),
    max_line=st.sampled_from([16, 64, 300]),
)
def test_splitter_on_arbitrary_bytes(pieces: list[bytes], read_chunk: int, max_line: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "usage.jsonl"
        path.write_bytes(b"")
        ing = _ingestor()
        tailer = Tailer([str(path)], ing, read_chunk=read_chunk, max_line_bytes=max_line, use_inotify=False)
        try:
            for piece in pieces:
                with open(path, "ab") as f:
                    f.write(piece)
                tailer.poll_once()
                for stream in tailer._streams.values():
                    assert len(stream.lines.tail) <= max_line  # bounded held partial line
            tailer.poll_once()
        finally:
            tailer.close()
        data = path.read_bytes()
        *complete, partial = data.split(b"\n")
        early = len(partial) > max_line  # an unterminated line is dropped (and counted) once it is too long
        oracle = _ingestor()
        for line in complete:
            if len(line) <= max_line:
                oracle.on_lines(str(path), [line], 1, 0)
        stats = ing.store.files[str(path)] if data else None
        if stats is None:
            assert str(path) not in ing.store.files
            return
        assert stats.read_bytes == len(data)
        assert sum(stats.lines.values()) == len(complete) + early
        assert stats.invalid.get("oversized", 0) == sum(len(line) > max_line for line in complete) + early
        assert usage_state(ing.store) == usage_state(oracle.store)
