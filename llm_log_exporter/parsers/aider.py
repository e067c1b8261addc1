"""aider's ``--analytics-log`` (aider/analytics.py, aider-chat 0.86.x): tokens and cost, no latency.

Lines are ``{"event", "properties", "user_id", "time"}``. Only ``message_send`` carries usage: one
line per user message, summed over every LLM call aider made for it (reflections, retries), with
tokens taken from the provider's usage or, when absent (aider streams without a usage chunk),
aider's own estimate. ``message_send_exception`` is a failure; aider logs it only for exceptions
that are not litellm API errors, so it undercounts failures (the callback hook sees them all).
Every other event is skipped. aider ``str()``s non-numbers, so a missing value is the string
``"None"``; models aider does not know are written ``provider/REDACTED`` (or ``"None"`` without a
provider prefix: the model label is then ``""``, and the tokens still count).
"""

from __future__ import annotations

import math
from typing import Any

from llm_log_exporter.events import Event, Request
from llm_log_exporter.parsers._fields import MAX_COST_USD, MAX_EPOCH, MAX_TOKENS, bad, split_provider
from llm_log_exporter.schema.errors import classify_error

NAME = "aider"

_NONE = "None"


def detect(obj: dict[str, Any]) -> bool:
    return "event" in obj and "properties" in obj and "user_id" in obj


def _tokens(props: dict[str, Any], key: str) -> int:
    value = props.get(key)
    if value is None or value == _NONE:
        return 0
    if type(value) is int and 0 <= value <= MAX_TOKENS:
        return value
    raise bad(key, value)


def _cost(props: dict[str, Any], tokens: int) -> float | None:
    value = props.get("cost")
    if value is None or value == _NONE:
        return None
    kind = type(value)
    if not ((kind is float or kind is int) and 0 <= value <= MAX_COST_USD and math.isfinite(value)):
        raise bad("cost", value)
    # aider writes 0.0 when it has no price for the model (base_coder.py: it skips costing a model
    # without input_cost_per_token), so a zero cost next to real tokens means "unknown", not "free".
    if value == 0 and tokens:
        return None
    return float(value)


def _model(props: dict[str, Any]) -> tuple[str, str]:
    """(provider, model) from ``main_model`` (LiteLLM spelling ``provider/model``); "" when unknown."""
    value = props.get("main_model")
    if value is None or value == _NONE:
        return "", ""
    if type(value) is not str:
        raise bad("main_model", value)
    return split_provider(value)


def _ts(obj: dict[str, Any]) -> float | None:
    value = obj.get("time")
    if value is None:
        return None
    kind = type(value)
    if (kind is int or kind is float) and 0 <= value < MAX_EPOCH and math.isfinite(value):
        return float(value)
    raise bad("time", value)


def parse(obj: dict[str, Any]) -> list[Event]:
    event = obj.get("event")
    if type(event) is not str:
        raise bad("event", event)
    if event != "message_send" and event != "message_send_exception":
        return []  # launched, exit, command_*, ...: no usage
    props = obj.get("properties")
    if type(props) is not dict:
        raise bad("properties", props)
    provider, model = _model(props)
    if event == "message_send_exception":
        # "litellm.RateLimitError: ..." → the class name before the first colon
        exception = props.get("exception")
        name = exception.split(":", 1)[0].strip() if type(exception) is str else None
        return [Request(ts=_ts(obj), model=model, provider=provider, status="failure",
                        error_type=classify_error(name, None))]
    prompt = _tokens(props, "prompt_tokens")
    completion = _tokens(props, "completion_tokens")
    _tokens(props, "total_tokens")  # validated; total_cost is a running session total: never added
    return [Request(ts=_ts(obj), model=model, provider=provider, prompt_tokens=prompt, completion_tokens=completion,
                    cost_usd=_cost(props, prompt + completion))]
