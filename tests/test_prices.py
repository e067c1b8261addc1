"""Price table: lookup chain, rates per token kind, tiers, unknown models, and the bundled table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llm_log_exporter.aggregate.prices import PriceTable, PriceTableError, bundled_table_path, load_prices
from llm_log_exporter.events import Request
from tests.helpers import FIXTURES, ROOT, metrics_for_files, value

TABLE = PriceTable.load(FIXTURES / "prices.json")


def ev(model: str, provider: str = "", prompt: int = 1000, completion: int = 100, cached: int = 0,
       written: int = 0, reasoning: int = 0, cost: float | None = None, tier: str | None = None) -> Request:
    return Request(None, "", model, provider, "", "success", None, None, None, False, prompt, completion,
                   cached, written, reasoning, cost, None, tier)


def test_lookup_chain() -> None:
    assert TABLE.lookup("gpt-4o-mini") is not None  # exact
    assert TABLE.lookup("openai/gpt-4o-mini") == TABLE.lookup("gpt-4o-mini")  # without provider prefix
    assert TABLE.lookup("openrouter/openai/gpt-4o-mini") == TABLE.lookup("gpt-4o-mini")  # every prefix
    assert TABLE.lookup("gemini-2.5-pro", "gemini") == TABLE.lookup("gemini/gemini-2.5-pro")  # provider/model
    assert TABLE.lookup("gemini-2.5-pro") is None
    assert TABLE.lookup("no-such-model", "openai") is None


def test_cached_tokens_at_the_cache_read_rate() -> None:
    # gpt-4o-mini: input 1.5e-07, cache read 7.5e-08, output 6e-07
    assert TABLE.cost(ev("gpt-4o-mini", cached=800)) == pytest.approx(200 * 1.5e-07 + 800 * 7.5e-08 + 100 * 6e-07)


def test_without_a_cache_rate_cached_tokens_cost_the_input_rate(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"m": {"input_cost_per_token": "2e-06", "output_cost_per_token": 1e-05}}))
    table = PriceTable.load(path)  # string rates, as LiteLLM accepts them
    assert table.cost(ev("m", cached=800, written=100)) == pytest.approx(1000 * 2e-06 + 100 * 1e-05)


def test_cache_write_and_long_context_rates() -> None:
    # claude-sonnet-4-5 above 200k input tokens: every rate switches to its _above_200k_tokens value
    small = TABLE.cost(ev("claude-sonnet-4-5", prompt=1200, completion=50, cached=800, written=300))
    assert small == pytest.approx(100 * 3e-06 + 800 * 3e-07 + 300 * 3.75e-06 + 50 * 1.5e-05)
    big = TABLE.cost(ev("claude-sonnet-4-5", prompt=300_000, completion=10, cached=100_000, written=0))
    assert big == pytest.approx(200_000 * 6e-06 + 100_000 * 6e-07 + 10 * 2.25e-05)


def test_batch_tier_rates() -> None:
    assert TABLE.cost(ev("gpt-4o-mini", tier="batches")) == pytest.approx(1000 * 7.5e-08 + 100 * 3e-07)
    # no batch rates for this model: the standard ones
    assert TABLE.cost(ev("claude-3-5-haiku-20241022", tier="batches")) == pytest.approx(1000 * 8e-07 + 100 * 4e-06)


def test_agrees_with_litellm_cost_per_token() -> None:
    """litellm's own calculator is the oracle for the models and token mixes of the fixtures."""
    litellm = pytest.importorskip("litellm")
    from litellm import Usage

    cases = [
        ("gpt-4o-mini", "openai", 1000, 500, 0, 0, 0),
        ("gpt-4o-mini", "openai", 1000, 100, 800, 0, 0),
        ("claude-sonnet-4-5", "anthropic", 1200, 50, 800, 300, 20),
        ("claude-3-5-haiku-20241022", "anthropic", 5000, 700, 1000, 2000, 0),
    ]
    bundled = load_prices(None)
    assert bundled is not None
    for model, provider, prompt, completion, cached, written, reasoning in cases:
        usage = Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
                      prompt_tokens_details={"cached_tokens": cached}, cache_creation_input_tokens=written,
                      cache_read_input_tokens=cached, completion_tokens_details={"reasoning_tokens": reasoning})
        want = sum(litellm.cost_per_token(model=f"{provider}/{model}", usage_object=usage))
        got = bundled.cost(ev(model, provider, prompt, completion, cached, written, reasoning))
        assert got == pytest.approx(want, rel=1e-12), model


def test_bundled_table_is_found_without_importing_litellm() -> None:
    code = ("import sys; from llm_log_exporter.aggregate.prices import load_prices; t = load_prices(None); "
            "print(len(t), 'litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    count, imported = out.stdout.split()
    assert int(count) > 1000 and imported == "False"
    assert bundled_table_path() is not None


def test_prices_off_and_bad_files(tmp_path: Path) -> None:
    assert load_prices("off") is None
    with pytest.raises(PriceTableError):
        load_prices(str(tmp_path / "missing.json"))
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(PriceTableError):
        load_prices(str(tmp_path / "list.json"))
    (tmp_path / "junk.json").write_text("{nope")
    with pytest.raises(PriceTableError):
        load_prices(str(tmp_path / "junk.json"))


def test_event_with_its_own_cost_is_never_priced(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    lines = [
        {"v": 1, "model": "gpt-4o-mini", "prompt_tokens": 1000, "completion_tokens": 100, "cost_usd": 0.5},
        {"v": 1, "model": "gpt-4o-mini", "prompt_tokens": 1000, "completion_tokens": 100, "cost_usd": 0.0},
        {"v": 1, "model": "gpt-4o-mini", "prompt_tokens": 1000, "completion_tokens": 100},  # priced
        {"v": 1, "model": "mystery", "prompt_tokens": 5, "completion_tokens": 1},  # unknown
        {"v": 1, "model": "mystery", "status": "failure"},  # no tokens: nothing to price, not "unknown"
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    s = metrics_for_files([log], prices=str(FIXTURES / "prices.json"))
    want = 0.5 + 0.0 + 1000 * 1.5e-07 + 100 * 6e-07
    assert value(s, "llm_cost_usd_total", model="gpt-4o-mini") == pytest.approx(want)
    assert value(s, "llm_exporter_cost_unknown_total", model="mystery") == 1
    off = metrics_for_files([log], prices="off")
    assert value(off, "llm_cost_usd_total", model="gpt-4o-mini") == 0.5
    assert value(off, "llm_exporter_cost_unknown_total", model="gpt-4o-mini") == 1


def test_cost_unknown_model_label_is_bounded(tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    log.write_text("".join(json.dumps({"v": 1, "model": f"m{i}", "prompt_tokens": 1}) + "\n" for i in range(5)))
    s = metrics_for_files([log], prices="off", max_models=2)
    unknown = {dict(labels)["model"]: v for (name, labels), v in s.items() if name == "llm_exporter_cost_unknown_total"}
    assert unknown == {"m0": 1, "m1": 1, "__other__": 3}


def test_bad_prices_flag_fails_the_daemon_cleanly(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "llm_log_exporter", "--file", str(tmp_path / "x.jsonl"),
                          "--prices", str(tmp_path / "missing.json"), "--port", "0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "cannot read price table" in out.stderr


def test_well_formed_native_line_without_cost_is_priced(tmp_path: Path) -> None:
    """The native fast path builds Request tuples directly; they must carry every field."""
    line = {"v": 1, "event": "request", "ts": 1795342584.6, "call_id": "c", "model": "gpt-4o-mini",
            "provider": "openai", "tenant_id": "t", "status": "success", "error_type": None, "duration_s": 0.5,
            "ttft_s": None, "stream": False, "prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100,
            "cached_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0, "cost_usd": None, "cache_hit": None}
    from llm_log_exporter.parsers import native

    [event] = native.parse(line)
    assert event.price_tier is None and len(event) == len(event._fields)
    log = tmp_path / "u.jsonl"
    log.write_text(json.dumps(line) + "\n")
    s = metrics_for_files([log], prices=str(FIXTURES / "prices.json"))
    assert value(s, "llm_cost_usd_total") == pytest.approx(1000 * 1.5e-07 + 100 * 6e-07)
