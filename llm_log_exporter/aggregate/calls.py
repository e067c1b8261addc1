"""LiteLLM payloads of one call settled into one request: the last payload of a call is its outcome.

LiteLLM hands its loggers (s3, gcs_bucket, generic_api, a custom logger dumping the payload) one payload per
failed attempt of a streamed call its router retries, and the first failed attempt of a call that then
succeeds — each a complete failure payload, with nothing in it that says the router went on. The payloads
of one call share its trace id (``trace_id``: the router keeps one for all retries and fallbacks of a call;
the proxy keeps one per client request). So a failure that reached a provider is *held* until event time
has moved ``window`` seconds past it: a later payload of the same trace id within that time makes it a
retried attempt, otherwise it is the call's outcome. A success, or a failure that never reached a provider
(the proxy rejected the call itself), is an outcome at once. Our own callback writes final lines and needs
none of this.

Event time, never the wall clock: replay settles exactly as the live daemon did, and when no line
arrives a held failure waits (``flush`` settles everything at the end of a replay or report).
"""

from __future__ import annotations

from typing import Any

from llm_log_exporter.aggregate import codec
from llm_log_exporter.events import CallPart, Request

DEFAULT_RETRY_WINDOW = 60.0  # seconds of event time; LiteLLM's router waits at most ~9 s between attempts
MAX_HELD = 10_000  # held failures beyond this are settled (as outcomes) oldest first


class Calls:
    """Failures held back by trace id, in arrival order (so the oldest is checked first)."""

    def __init__(self, window: float = DEFAULT_RETRY_WINDOW, max_held: int = MAX_HELD) -> None:
        self.window = window
        self.max_held = max_held
        self.held: dict[str, Request] = {}
        self.next_due = float("inf")  # when the oldest held failure settles (its ts + window)

    def part(self, ev: CallPart, clock: float | None) -> tuple[Request | None, Request | None, list[Request]]:
        """Take one payload: ``(retried, outcome, settled)`` — the held failure it continues (a retried
        attempt now), itself when it is an outcome already, and failures pushed out by ``max_held``."""
        req = ev.request
        retried = self.held.pop(ev.key, None)
        if retried is not None and retried.model != req.model:
            req = req._replace(model=retried.model)  # a fallback: the call is named by the group first asked for
        if req.status != "failure" or not req.provider:
            self._reset_due()
            return retried, req, []
        if req.ts is None and clock is not None:
            req = req._replace(ts=clock)  # held by the time it was read
        self.held[ev.key] = req
        settled = []
        while len(self.held) > self.max_held:
            settled.append(self.held.pop(next(iter(self.held))))
        self._reset_due()
        return retried, None, settled

    def due(self, clock: float) -> list[Request]:
        """Held failures whose window has passed at ``clock``: the outcomes of their calls."""
        out = []
        window = self.window
        for key, req in list(self.held.items()):
            ts = req.ts
            if ts is not None and ts + window > clock:
                break
            out.append(req)
            del self.held[key]
        self._reset_due()
        return out

    def flush(self) -> list[Request]:
        """Every held failure, settled as its call's outcome (the end of a replay or report)."""
        out = list(self.held.values())
        self.held.clear()
        self.next_due = float("inf")
        return out

    def _reset_due(self) -> None:
        if not self.held:
            self.next_due = float("inf")
            return
        ts = next(iter(self.held.values())).ts
        self.next_due = -float("inf") if ts is None else ts + self.window

    def dump(self) -> list[list[Any]]:
        return [[key, list(req)] for key, req in self.held.items()]

    def load(self, data: Any) -> None:
        for key, fields in data:
            if not isinstance(fields, list) or len(fields) != len(Request._fields):
                raise ValueError("a held call does not have this version's request fields")
            req = Request(*fields)
            for text in (key, req.call_id, req.model, req.provider, req.tenant_id, req.status):
                codec.text(text)
            codec.optional(req.ts)
            self.held[key] = req
        self._reset_due()


def settle(items: Any, window: float = DEFAULT_RETRY_WINDOW) -> Any:
    """``(ts, seq, event)`` in time order with every ``CallPart`` settled: a retried part disappears, an
    outcome comes out as its ``Request`` when its call is settled (for readers that count requests
    themselves, like ``report``)."""
    calls = Calls(window)
    for ts, seq, event in items:
        if calls.next_due <= ts:
            for req in calls.due(ts):
                yield (req.ts if req.ts is not None else ts), seq, req
        if type(event) is CallPart:
            _, outcome, settled = calls.part(event, ts)
            for req in settled:
                yield (req.ts if req.ts is not None else ts), seq, req
            if outcome is not None:
                yield ts, seq, outcome
        else:
            yield ts, seq, event
    for req in calls.flush():
        yield (req.ts if req.ts is not None else 0.0), 0, req
