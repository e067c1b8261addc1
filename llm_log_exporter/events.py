"""Normalized usage events: what every parser produces and the aggregation consumes.

Events are NamedTuples: cheap to build on the hot path and immutable once made. Build them by
keyword (every field has a default); only the native parser's fast path builds a ``Request``
positionally. Times are epoch seconds (float) or None when the source line carried none.
"""

from __future__ import annotations

from typing import NamedTuple


class InvalidLine(ValueError):
    """A line that cannot become an event; ``reason`` is a short stable label value."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Request(NamedTuple):
    """One finished LLM call (success or failure). The field order is the native fast path's."""

    ts: float | None = None
    call_id: str = ""
    model: str = ""
    provider: str = ""
    tenant_id: str = ""
    status: str = "success"  # "success" | "failure"
    error_type: str | None = None
    duration_s: float | None = None  # None: the source has no latency (e.g. aider analytics)
    ttft_s: float | None = None  # streaming calls only
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None  # None: cost unknown (never counted as zero)
    cache_hit: bool | None = None
    # Which price-table rates apply when the cost is filled in from --prices: None (standard) or a
    # LiteLLM key suffix such as "batches" (batch APIs bill about half), "priority", "flex".
    price_tier: str | None = None
    # The model that served the call (a proxy deployment's model), when the line names it; for
    # attribution labels. None: not given.
    served_model: str | None = None
    tokens_estimated: bool = False  # the token counts are a tokenizer's estimate, not the provider's
    # Attribution labels of the line (``labels`` object: key alias, team, user, project, repo, …); the
    # exporter keeps only those asked for with --extra-label.
    labels: dict[str, str] | None = None
    # The trace the call belongs to (a line's optional ``trace_id``): with ``call_id``, the exemplar that links
    # a latency bucket or the cost to this call.
    trace_id: str = ""


class Attempt(NamedTuple):
    """A failed upstream attempt that the call went on from (retried, or fallen back from); the call's
    outcome is its ``Request``. Counts as a provider error and a retry, never as a request."""

    ts: float | None = None
    call_id: str = ""
    tenant_id: str = ""
    provider: str = ""
    model: str = ""
    error_type: str = "other"
    stream: bool = False


class CallPart(NamedTuple):
    """A LiteLLM payload's request, which may be one attempt of a call the router retried: payloads of
    one call share ``key`` (LiteLLM's trace id), and only the last of them is the call's outcome."""

    ts: float | None
    key: str
    request: Request


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


Event = Request | Attempt | CallPart | StreamStart | RateLimited | BreakerState | BudgetUsage | CacheLookup
