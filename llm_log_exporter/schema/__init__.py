"""The wire format, declared once: what the writer puts on a line and what the parsers accept (schema v1).

Standard library only, and it imports nothing from the rest of the package: ``install-hook`` copies this
package beside the writer into other environments (aider's venv). docs/events.md is the prose form and
``event-v1.schema.json`` the machine-readable one.
"""

from __future__ import annotations

import re
from typing import Any

SCHEMA_VERSION = 1

STATUSES = ("success", "failure")

# Event kinds (``event``). A reader skips kinds it does not know.
REQUEST = "request"  # one client call with its final outcome
ATTEMPT = "attempt"  # a failed upstream attempt that was retried or fallen back from (not the call's outcome)
STREAM_START = "stream_start"
EVENT_KINDS = (REQUEST, ATTEMPT, STREAM_START, "rate_limited", "circuit_breaker", "budget", "cache")

# The ``model`` of a failed call that no provider and no router took (a LiteLLM proxy rejecting a key or an
# unknown model name, an SDK call whose model names no provider): the name the client sent is not a label,
# so arbitrary names cannot add series.
UNKNOWN_MODEL = "unknown"

# Failure classes shared by the writer and every parser; any other name a gateway writes counts as "other",
# so a provider's own error strings can never add series.
ERROR_TYPES = (
    "rate_limit",
    "timeout",
    "auth",
    "bad_request",
    "context_window",
    "content_filter",
    "not_found",
    "server_error",
    "connection",
    "budget_exceeded",
    "other",
)

# Circuit-breaker states as gauge values; the names a ``circuit_breaker`` line may use.
BREAKER_STATES = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}

# Bounds of a valid line: beyond them a value is a bug or an attack, never a measurement.
MAX_TOKENS = 1 << 53  # float counters stop being exact above this
MAX_COST_USD = 1e9
MAX_DURATION_S = 1e7
MAX_EPOCH = 1e11  # year 5138: a larger "epoch seconds" value is a unit mistake (milliseconds)

TENANT_TAG = "tenant:"


def tenant_from_tags(tags: Any) -> str | None:
    """The tenant of a ``tenant:<id>`` request tag (LiteLLM ``metadata={"tags": [...]}``), first one wins."""
    if not isinstance(tags, (list, tuple)):
        return None
    for tag in tags:
        if isinstance(tag, str) and tag.startswith(TENANT_TAG) and len(tag) > len(TENANT_TAG):
            return tag[len(TENANT_TAG):]
    return None


# Attribution labels: the optional ``labels`` object of a request line (label name → short string).
# Names are Prometheus label names (no leading ``__``, which Prometheus reserves); the writer keeps at
# most MAX_LINE_LABELS of them and cuts values to MAX_LABEL_VALUE characters; a reader rejects a line
# whose ``labels`` is not such an object (values up to MAX_LABEL_VALUE_READ characters are accepted, so
# another writer's longer values still count; the exporter cuts them to --max-label-length).
LABEL_NAME = re.compile(r"(?!__)[a-zA-Z_][a-zA-Z0-9_]{0,63}")
MAX_LINE_LABELS = 16
MAX_LABEL_VALUE = 128
MAX_LABEL_VALUE_READ = 1024


def label_value(value: Any) -> str | None:
    """A metadata value as a label value: strings, numbers and booleans, cut to MAX_LABEL_VALUE; else None."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, (int, float)):
        value = str(value)
    elif not isinstance(value, str):
        return None
    return value[:MAX_LABEL_VALUE] if value else None
