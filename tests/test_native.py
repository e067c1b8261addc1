"""The native schema-v1 parser: defaults, every rejected kind, and auto-detection."""

from __future__ import annotations

import pytest

from llm_log_exporter.events import InvalidLine, Request
from llm_log_exporter.parsers import get_parser, native
from tests.helpers import FIXTURES

GOOD = {
    "v": 1, "event": "request", "ts": 1795342584.6, "call_id": "c1", "model": "gpt-4o-mini",
    "provider": "openai", "tenant_id": "acme", "status": "success", "error_type": None,
    "duration_s": 0.157, "ttft_s": None, "stream": False, "prompt_tokens": 10,
    "completion_tokens": 20, "total_tokens": 30, "cached_tokens": 4, "cache_write_tokens": 1,
    "reasoning_tokens": 2, "cost_usd": 1.35e-05, "cache_hit": None,
}


def test_full_request_line() -> None:
    [ev] = native.parse(GOOD)
    assert ev == Request(1795342584.6, "c1", "gpt-4o-mini", "openai", "acme", "success", None, 0.157, None,
                         False, 10, 20, 4, 1, 2, 1.35e-05, None)


def test_defaults_for_missing_optional_keys() -> None:
    [ev] = native.parse({"v": 1, "event": "request", "model": "m"})
    assert ev == Request(None, "", "m", "", "", "success", None, None, None, False, 0, 0, 0, 0, 0, None, None)


def test_missing_v_defaults_to_1_in_native_mode_but_auto_needs_it() -> None:
    assert get_parser("auto")({"v": 1, "model": "m"})[0].model == "m"
    assert native.parse({"event": "request", "model": "m"})[0].model == "m"
    with pytest.raises(InvalidLine) as err:
        get_parser("auto")({"event": "request", "model": "m"})
    assert err.value.reason == "unknown_format"


def test_rfc3339_timestamps() -> None:
    assert native.parse({**GOOD, "ts": "2026-11-23T12:00:00Z"})[0].ts == 1795435200.0
    assert native.parse({**GOOD, "ts": "2026-11-23T13:00:00+01:00"})[0].ts == 1795435200.0
    with pytest.raises(InvalidLine):
        native.parse({**GOOD, "ts": "2026-11-23T12:00:00"})  # no offset: ambiguous
    with pytest.raises(InvalidLine):
        native.parse({**GOOD, "ts": "yesterday"})


def test_ttft_only_counts_for_streams() -> None:
    assert native.parse({**GOOD, "ttft_s": 0.3})[0].ttft_s is None
    assert native.parse({**GOOD, "ttft_s": 0.3, "stream": True})[0].ttft_s == 0.3
    assert native.parse({**GOOD, "stream": None})[0].stream is False


def test_error_type_kept_only_for_failures() -> None:
    assert native.parse({**GOOD, "error_type": "rate_limit"})[0].error_type is None
    ev = native.parse({**GOOD, "status": "failure", "error_type": "rate_limit"})[0]
    assert (ev.status, ev.error_type) == ("failure", "rate_limit")


def test_unknown_event_kind_is_skipped_not_invalid() -> None:
    assert native.parse({"v": 1, "event": "something_new", "x": 1}) == []


def test_unknown_keys_ignored() -> None:
    assert native.parse({**GOOD, "extra": {"deep": [1, 2]}})[0].model == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"prompt_tokens": "10"}, "bad_field"),
        ({"prompt_tokens": -1}, "bad_field"),
        ({"prompt_tokens": 1.5}, "bad_field"),
        ({"prompt_tokens": True}, "bad_field"),
        ({"completion_tokens": False}, "bad_field"),
        ({"cached_tokens": 2**60}, "bad_field"),
        ({"total_tokens": "30"}, "bad_field"),
        ({"cost_usd": "0.1"}, "bad_field"),
        ({"cost_usd": -0.5}, "bad_field"),
        ({"cost_usd": True}, "bad_field"),
        ({"cost_usd": float("nan")}, "bad_field"),
        ({"cost_usd": float("inf")}, "bad_field"),
        ({"duration_s": float("inf")}, "bad_field"),
        ({"duration_s": "1s"}, "bad_field"),
        ({"status": "ok"}, "bad_field"),
        ({"stream": "yes"}, "bad_field"),
        ({"cache_hit": 1}, "bad_field"),
        ({"tenant_id": 42}, "bad_field"),
        ({"provider": ["openai"]}, "bad_field"),
        ({"model": ""}, "missing_model"),
        ({"model": None}, "missing_model"),
        ({"model": 3}, "missing_model"),
        ({"v": 2}, "unsupported_version"),
        ({"v": "1"}, "unsupported_version"),
        ({"v": True}, "unsupported_version"),
        ({"event": 7}, "bad_field"),
    ],
)
def test_bad_values_reject_the_whole_line(patch: dict, reason: str) -> None:
    with pytest.raises(InvalidLine) as err:
        native.parse({**GOOD, **patch})
    assert err.value.reason == reason


def test_missing_model_rejected() -> None:
    line = dict(GOOD)
    del line["model"]
    with pytest.raises(InvalidLine) as err:
        native.parse(line)
    assert err.value.reason == "missing_model"


def test_unknown_format_name() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        get_parser("nope")


# --- the fast path: every well-formed line, the same result as the field-by-field path ---------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from llm_log_exporter.parsers import _fields  # noqa: E402


def slow(obj: dict) -> list:
    """The field-by-field path alone (what names a rejection)."""
    fast = native._fast_request
    native._fast_request = lambda obj: None
    try:
        return native.parse(obj)
    finally:
        native._fast_request = fast


@pytest.mark.parametrize("line", [
    {"v": 1, "model": "m"},  # the smallest line
    {"v": 1, "event": "request", "model": "m", "ts": "2026-11-23T12:00:00Z", "prompt_tokens": 3},  # RFC 3339
    {"v": 1, "model": "m", "ts": 1795342584, "duration_s": 2, "cost_usd": 0},  # ints where floats go
    {"v": 1, "model": "m", "status": "failure", "error_type": "rate_limit", "duration_s": 0.5},
    {"v": 1, "model": "m", "status": "failure", "error_type": "a gateway's own name"},  # → other
    {"v": 1, "model": "m", "status": "failure"},  # → other
    {"v": 1, "model": "m", "stream": True, "ttft_s": 0.2, "provider": None, "tenant_id": None},
    {**GOOD, "served_model": "gpt-4o-2024-08-06", "tokens_estimated": True, "labels": {"team": "a"}},  # newer keys
])
def test_fast_path_takes_every_well_formed_line(line: dict) -> None:
    fast = native._fast_request(line)
    assert fast is not None
    assert [fast] == slow(line) == native.parse(line)


KEYS = ["v", "event", "model", "status", "stream", "prompt_tokens", "completion_tokens", "total_tokens",
        "cached_tokens", "cache_write_tokens", "reasoning_tokens", "duration_s", "ttft_s", "cost_usd", "ts",
        "call_id", "provider", "tenant_id", "cache_hit", "error_type", "extra"]
VALUES = (st.none() | st.booleans() | st.integers(-3, 2**54) | st.sampled_from([1, 0, 2**53, 1e11, 1e11 - 1])
          | st.floats(-1, 2e11, allow_nan=False) | st.sampled_from(["request", "success", "failure", "rate_limit",
                                                                     "x", "", "2026-11-23T12:00:00Z", "2026-11-23"])
          | st.lists(st.integers(-(2**63), 2**64 - 1), max_size=2))  # JSON integers orjson writes


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.dictionaries(st.sampled_from(KEYS), VALUES), st.sampled_from([{}, {"v": 1}, {"v": 1, "model": "m"}]))
def test_fast_path_agrees_with_the_field_by_field_path(obj: dict, base: dict) -> None:
    obj = {**base, **obj}
    try:
        expected = slow(obj)
    except _fields.InvalidLine as err:
        expected = err.reason
    try:
        fast = native._fast_request(obj)
    except _fields.InvalidLine as err:
        assert err.reason == expected
        return
    if fast is not None:
        assert [fast] == expected


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.dictionaries(st.sampled_from(KEYS), VALUES), st.sampled_from([{}, {"v": 1}, {"v": 1, "model": "m"}]))
def test_typed_decoder_agrees_with_orjson_and_the_dict_path(obj: dict, base: dict) -> None:
    import orjson

    line = orjson.dumps({**base, **obj})
    fast = native.fast_event(line)
    if fast is not None:
        assert [fast] == native.parse(orjson.loads(line))


def test_without_msgspec_every_line_takes_the_dict_path_with_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """msgspec is a dependency, but an environment without it (a distro package, a failed wheel) still
    counts every line exactly: ``fast_event`` steps aside and orjson + ``_fast_request`` take over."""
    from llm_log_exporter.parsers import parse_line

    lines = [line for path in (FIXTURES / "sample.jsonl", FIXTURES / "history" / "gateway-a.jsonl")
             for line in path.read_bytes().splitlines() if line.strip()]
    parse = get_parser("auto")

    def outcomes() -> list:
        seen = []
        for line in lines:
            try:
                seen.append(parse_line(parse, line))
            except InvalidLine as err:
                seen.append(err.reason)
        return seen

    typed = outcomes()
    assert sum(native.fast_event(line) is not None for line in lines) > len(lines) // 2
    monkeypatch.setattr(native, "msgspec", None)
    assert all(native.fast_event(line) is None for line in lines)
    assert outcomes() == typed


@pytest.mark.parametrize("line", [
    b'{"v":1,"model":"m","x":"\\ud800"}',  # orjson: not JSON
    b'{"v":1,"model":"m","x":"\xff"}',  # invalid UTF-8 in a key nobody reads: still not JSON
    b'{"v":1,"model":"m","x":' + b"[" * 2000 + b"]" * 2000 + b"}",
    b'{"v":2,"model":"m","v":1}',  # duplicate keys: the last one counts, as orjson reads it
    b'{"v":1,"model":"m","status":null}',
])
def test_typed_decoder_leaves_every_odd_line_to_the_generic_path(line: bytes) -> None:
    from llm_log_exporter.parsers import parse_line

    assert native.fast_event(line) is None
    parse = get_parser("auto")
    try:
        events = parse_line(parse, line)
    except InvalidLine as err:
        events = err.reason  # type: ignore[assignment]
    assert events in ("not_json", "bad_field") or events[0].model == "m"
