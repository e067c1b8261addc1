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
    # Which price-table rates apply when the cost is filled in from --prices: None (standard) or a
    # LiteLLM key suffix such as "batches" (batch APIs bill about half), "priority", "flex".
    price_tier: str | None = None


Event = Request  # becomes a union as event kinds are added
