"""Cost for events that carry none, from a price table in LiteLLM's ``model_prices_and_context_window`` format.

The table is ``--prices FILE`` or the copy bundled in an installed ``litellm`` package, found without
importing litellm (that import takes seconds and may try the network). Rates follow LiteLLM's
semantics: input tokens include cached and cache-write tokens, output tokens include reasoning
tokens; each subset is billed at its own rate where the table has one, else at the base rate.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

import orjson

from llm_log_exporter.events import Request

log = logging.getLogger("llm_log_exporter")

BUNDLED_NAME = "model_prices_and_context_window_backup.json"
DISABLED = ("off", "none")
_CACHE_LIMIT = 10_000
_MEMO_KEY_LENGTH = 512  # no real model name comes close

# Per-token rates kept from each entry (everything else in the table is dropped at load).
_BASE_KEYS = ("input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost",
              "cache_creation_input_token_cost", "output_cost_per_reasoning_token")


class PriceTableError(ValueError):
    """The price table cannot be used (unreadable, not JSON, not an object of objects)."""


def _rate(value: Any) -> float | None:
    if type(value) is str:  # LiteLLM accepts "3e-7" written by hand in config files
        try:
            value = float(value)
        except ValueError:
            return None
    if (type(value) is float or type(value) is int) and 0 <= value < float("inf"):
        return float(value)
    return None


def _slim(entry: dict[str, Any]) -> dict[str, float]:
    rates = {}
    for key, value in entry.items():
        if key.startswith(_BASE_KEYS):
            rate = _rate(value)
            if rate is not None:
                rates[key] = rate
    return rates


def _thresholds(rates: dict[str, float]) -> list[tuple[float, str]]:
    """``input_cost_per_token_above_200k_tokens`` → [(200000.0, "_above_200k_tokens")], highest first."""
    found = []
    for key in rates:
        if key.startswith("input_cost_per_token_above_") and key.endswith("_tokens"):
            spelled = key[len("input_cost_per_token_above_"):-len("_tokens")]
            try:
                limit = float(spelled[:-1]) * 1000 if spelled.endswith("k") else float(spelled)
            except ValueError:
                continue
            found.append((limit, f"_above_{spelled}_tokens"))
    return sorted(found, reverse=True)


class _Entry:
    __slots__ = ("rates", "thresholds")

    def __init__(self, rates: dict[str, float]) -> None:
        self.rates = rates
        self.thresholds = _thresholds(rates)


class PriceTable:
    """Model name → per-token rates, with LiteLLM's lookup fallbacks and a memo per (model, provider)."""

    def __init__(self, entries: dict[str, Any], source: str = "") -> None:
        self.source = source
        self.entries: dict[str, _Entry] = {}
        for name, entry in entries.items():
            if type(entry) is dict:
                rates = _slim(entry)
                if "input_cost_per_token" in rates or "output_cost_per_token" in rates:
                    self.entries[name] = _Entry(rates)
        self._memo: dict[tuple[str, str], _Entry | None] = {}

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PriceTable:
        try:
            data = orjson.loads(Path(path).read_bytes())
        except OSError as err:
            raise PriceTableError(f"cannot read price table {path}: {err.strerror or err}") from None
        except orjson.JSONDecodeError as err:
            raise PriceTableError(f"price table {path} is not JSON: {err}") from None
        if type(data) is not dict:
            raise PriceTableError(f"price table {path} must be a JSON object keyed by model name")
        return cls(data, os.fspath(path))

    def lookup(self, model: str, provider: str = "") -> dict[str, float] | None:
        """The model's rates, or None when the table has no price for it."""
        entry = self._entry(model, provider)
        return entry.rates if entry is not None else None

    def _entry(self, model: str, provider: str) -> _Entry | None:
        """Exact model → the model without its provider prefix(es) → ``provider/model``."""
        key = (model, provider)
        memo = self._memo
        if key in memo:
            return memo[key]
        entries = self.entries
        entry = entries.get(model)
        rest = model
        while entry is None and "/" in rest:
            rest = rest.split("/", 1)[1]
            entry = entries.get(rest)
        if entry is None and provider:
            entry = entries.get(f"{provider}/{model}")
        if len(model) + len(provider) <= _MEMO_KEY_LENGTH:  # a hostile 100 kB name is looked up, not kept
            if len(memo) >= _CACHE_LIMIT:
                memo.clear()
            memo[key] = entry
        return entry

    def cost(self, ev: Request) -> float | None:
        """USD for the event's tokens, or None when the model has no price here."""
        entry = self._entry(ev.model, ev.provider)
        if entry is None:
            return None
        rates = entry.rates
        tier = f"_{ev.price_tier}" if ev.price_tier else ""
        suffix = ""
        for limit, spelled in entry.thresholds:
            if ev.prompt_tokens > limit:
                suffix = spelled
                break

        def rate(key: str, fallback: float | None) -> float | None:
            # tier rate (batches, priority, flex) > long-context rate > base rate > fallback
            for candidate in (key + tier if tier else None, key + suffix if suffix else None, key):
                if candidate is not None and candidate in rates:
                    return rates[candidate]
            return fallback

        input_rate = rate("input_cost_per_token", 0.0)
        output_rate = rate("output_cost_per_token", 0.0)
        cached, written, reasoning = ev.cached_tokens, ev.cache_write_tokens, ev.reasoning_tokens
        fresh_in = max(0, ev.prompt_tokens - cached - written)
        plain_out = max(0, ev.completion_tokens - reasoning)
        return (
            fresh_in * input_rate
            + cached * rate("cache_read_input_token_cost", input_rate)
            + written * rate("cache_creation_input_token_cost", input_rate)
            + plain_out * output_rate
            + reasoning * rate("output_cost_per_reasoning_token", output_rate)
        )


def bundled_table_path() -> Path | None:
    """The installed litellm's bundled cost map, located without importing litellm."""
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / BUNDLED_NAME
    return path if path.is_file() else None


def load_prices(spec: str | None) -> PriceTable | None:
    """``--prices``: a file, ``off``, or None for litellm's bundled table when litellm is installed."""
    if spec is not None and spec.strip().lower() in DISABLED:
        log.info("price table disabled: events without a cost stay unpriced")
        return None
    if spec:
        table = PriceTable.load(os.path.expanduser(spec))
    else:
        path = bundled_table_path()
        if path is None:
            log.info("no --prices and no litellm installed: events without a cost stay unpriced")
            return None
        table = PriceTable.load(path)
    log.info("price table: %d priced models from %s", len(table), table.source)
    return table
