"""Strict readers for foreign formats: a present value of the wrong type rejects the whole line.

Foreign producers write ``null`` freely, so None always means "absent"; anything else must have the
documented type, because a value coerced into a counter is worse than a counted, logged rejection.
"""

from __future__ import annotations

import math
from typing import Any

from llm_log_exporter.events import InvalidLine
from llm_log_exporter.schema import MAX_COST_USD, MAX_DURATION_S, MAX_EPOCH, MAX_TOKENS

__all__ = ["MAX_COST_USD", "MAX_DURATION_S", "MAX_EPOCH", "MAX_TOKENS", "bad", "count", "first_count", "mapping",
           "number", "split_provider", "text"]


def bad(key: str, value: Any) -> InvalidLine:
    return InvalidLine("bad_field", f"{key}={value!r:.40}")


def count(obj: dict[str, Any] | None, key: str) -> int | None:
    """A token count: non-negative int, or None when absent/null."""
    if obj is None:
        return None
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is int and 0 <= value <= MAX_TOKENS:
        return value
    raise bad(key, value)


def number(obj: dict[str, Any], key: str, limit: float = MAX_COST_USD) -> float | None:
    """A finite non-negative number (bool excluded), or None when absent/null."""
    value = obj.get(key)
    if value is None:
        return None
    kind = type(value)
    if (kind is float or kind is int) and 0 <= value <= limit and math.isfinite(value):
        return float(value)
    raise bad(key, value)


def mapping(obj: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    """A nested object, or None when absent/null."""
    if obj is None:
        return None
    value = obj.get(key)
    if value is None or type(value) is dict:
        return value
    raise bad(key, value)


def text(obj: dict[str, Any] | None, key: str) -> str | None:
    if obj is None:
        return None
    value = obj.get(key)
    if value is None or type(value) is str:
        return value
    raise bad(key, value)


def first_count(*candidates: tuple[dict[str, Any] | None, str]) -> int:
    """The first present count among (object, key) pairs, else 0."""
    for obj, key in candidates:
        value = count(obj, key)
        if value is not None:
            return value
    return 0


def split_provider(model: str) -> tuple[str, str]:
    """``"openai/gpt-4o-mini"`` → ``("openai", "gpt-4o-mini")``, LiteLLM's provider/model spelling."""
    provider, sep, rest = model.partition("/")
    if sep and provider and rest:
        return provider, rest
    return "", model
