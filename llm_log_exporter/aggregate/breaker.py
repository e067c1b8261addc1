"""Circuit-breaker state per provider, set by explicit events or derived from request outcomes.

Everything runs on event time (the newest ``ts`` seen), never on the wall clock, so replaying a
file gives exactly the states the live exporter showed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llm_log_exporter.aggregate import codec

CLOSED, HALF_OPEN, OPEN = 0, 1, 2

# Failures that say something about the provider's health; a bad request or a missing key does not.
TRIPPING_ERRORS = frozenset({"server_error", "timeout", "connection", "rate_limit"})


@dataclass
class _Provider:
    explicit: bool = False
    state: int = CLOSED
    failures: int = 0  # consecutive tripping failures
    opened_at: float = 0.0


class Breakers:
    """Derived breaker: open after ``threshold`` consecutive tripping failures, half-open once
    ``cooldown`` seconds of event time have passed, closed again on a success. A provider that
    has sent an explicit ``circuit_breaker`` event is driven by those events alone."""

    def __init__(self, threshold: int = 5, cooldown: float = 30.0, derive: bool = True) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.derive = derive
        self.providers: dict[str, _Provider] = {}
        # Providers whose next success changes something; a success elsewhere can skip ``outcome``.
        self.troubled: set[str] = set()

    def register(self, provider: str) -> None:
        """Show a provider as closed from its first request on."""
        if self.derive and provider not in self.providers:
            self.providers[provider] = _Provider()

    def dump(self) -> dict[str, list]:
        return {name: [p.explicit, p.state, p.failures, p.opened_at] for name, p in self.providers.items()}

    def load(self, data: Any) -> None:
        """Put back the providers of a state file (raises ``TypeError``/``ValueError`` on bad data)."""
        for name, (explicit, state, failures, opened_at) in data.items():
            state = codec.count(state)
            if state not in (CLOSED, HALF_OPEN, OPEN):
                raise ValueError(f"bad breaker state {state!r}")
            entry = _Provider(explicit is True, state, codec.count(failures), float(codec.number(opened_at)))
            self.providers[codec.text(name)] = entry
            if state != CLOSED or entry.failures:
                self.troubled.add(name)

    def _get(self, provider: str) -> _Provider:
        entry = self.providers.get(provider)
        if entry is None:
            entry = self.providers[provider] = _Provider()
        return entry

    def explicit(self, provider: str, state: int) -> None:
        entry = self._get(provider)
        entry.explicit = True
        entry.state = state

    def outcome(self, provider: str, ok: bool, error_type: str | None, ts: float | None) -> None:
        if not self.derive:
            return
        entry = self.providers.get(provider)
        if entry is None:
            entry = self.providers[provider] = _Provider()
        elif ok and entry.state == CLOSED and not entry.failures:
            return  # the common case: a healthy provider stays healthy
        if entry.explicit:
            return
        state = entry.state = self._state(entry, ts)
        if ok:
            entry.state, entry.failures = CLOSED, 0
            self.troubled.discard(provider)
            return
        if error_type not in TRIPPING_ERRORS:
            return
        self.troubled.add(provider)
        if state == HALF_OPEN:
            entry.state, entry.opened_at = OPEN, ts or entry.opened_at
            return
        entry.failures += 1
        if state == CLOSED and entry.failures >= self.threshold:
            entry.state, entry.opened_at, entry.failures = OPEN, ts or 0.0, 0

    def _state(self, entry: _Provider, now: float | None) -> int:
        """The state as of event time ``now``: an open derived breaker is half-open after the cooldown."""
        if (
            entry.state == OPEN
            and not entry.explicit
            and now is not None
            and now - entry.opened_at >= self.cooldown
        ):
            return HALF_OPEN
        return entry.state

    def states(self, now: float | None) -> dict[str, int]:
        """State of every provider seen, as of event time ``now`` (reading changes nothing)."""
        return {name: self._state(entry, now) for name, entry in self.providers.items()}
