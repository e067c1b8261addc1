"""Normalized usage events: what every parser produces and the metrics consume.

Events are NamedTuples: cheap to build on the hot path and immutable once made.
Times are epoch seconds (float) or None when the source line carried none.
"""

from __future__ import annotations

from typing import NamedTuple

SCHEMA_VERSION = 1

STATUSES = ("success", "failure")


class InvalidLine(ValueError):
    """A line that cannot become an event; ``reason`` is a short stable label value."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Request(NamedTuple):
    """One finished LLM call (success or failure)."""

    ts: float | None
    call_id: str
    model: str
    provider: str
    tenant_id: str
    status: str  # "success" | "failure"
    error_type: str | None
    duration_s: float | None  # None: the source has no latency (e.g. aider analytics)
    ttft_s: float | None  # streaming calls only
    stream: bool
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_usd: float | None  # None: cost unknown (never counted as zero)
    cache_hit: bool | None


class StreamStart(NamedTuple):
    """A streaming call began; the ``Request`` with the same ``call_id`` ends it."""

    ts: float | None
    call_id: str
    tenant_id: str
    provider: str
    model: str


class RateLimited(NamedTuple):
    """The gateway itself rejected a request of a tenant (its own limiter, not a provider 429)."""

    ts: float | None
    tenant_id: str
    provider: str


class BreakerState(NamedTuple):
    """A gateway's own circuit breaker for a provider changed state (0 closed, 1 half-open, 2 open)."""

    ts: float | None
    provider: str
    state: int


class BudgetUsage(NamedTuple):
    """A tenant's spend and limit as the gateway sees them; overrides derived budgets."""

    ts: float | None
    tenant_id: str
    spent_usd: float
    limit_usd: float


class CacheLookup(NamedTuple):
    """A gateway-level cache lookup that is not tied to a logged request."""

    ts: float | None
    tenant_id: str
    hit: bool


Event = Request | StreamStart | RateLimited | BreakerState | BudgetUsage | CacheLookup

# Circuit-breaker states as gauge values; names accepted in events.
BREAKER_STATES = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}

# Failure classes shared by every parser and the callback (see docs/events.md).
ERROR_TYPES = frozenset({
    "rate_limit", "timeout", "auth", "bad_request", "context_window", "content_filter",
    "not_found", "server_error", "connection", "budget_exceeded", "other",
})
