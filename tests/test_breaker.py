"""Derived and explicit circuit-breaker states, on event time."""

from __future__ import annotations

from llm_log_exporter.aggregate.breaker import CLOSED, HALF_OPEN, OPEN, Breakers


def test_opens_after_threshold_consecutive_failures() -> None:
    b = Breakers(threshold=3, cooldown=30)
    for t in range(2):
        b.outcome("openai", False, "server_error", 100.0 + t)
    assert b.states(101.0) == {"openai": CLOSED}
    b.outcome("openai", False, "timeout", 102.0)
    assert b.states(102.0) == {"openai": OPEN}


def test_success_resets_the_count() -> None:
    b = Breakers(threshold=3, cooldown=30)
    b.outcome("p", False, "server_error", 1.0)
    b.outcome("p", False, "server_error", 2.0)
    b.outcome("p", True, None, 3.0)
    b.outcome("p", False, "server_error", 4.0)
    b.outcome("p", False, "server_error", 5.0)
    assert b.states(5.0)["p"] == CLOSED


def test_client_errors_do_not_trip() -> None:
    b = Breakers(threshold=2, cooldown=30)
    for t in range(10):
        b.outcome("p", False, "bad_request", float(t))
        b.outcome("p", False, "auth", float(t))
    assert b.states(10.0)["p"] == CLOSED


def test_half_open_after_cooldown_then_closed_on_success() -> None:
    b = Breakers(threshold=1, cooldown=30)
    b.outcome("p", False, "rate_limit", 100.0)
    assert b.states(129.9)["p"] == OPEN
    assert b.states(130.0)["p"] == HALF_OPEN
    b.outcome("p", True, None, 131.0)
    assert b.states(131.0)["p"] == CLOSED


def test_failure_while_half_open_reopens() -> None:
    b = Breakers(threshold=1, cooldown=30)
    b.outcome("p", False, "server_error", 100.0)
    b.outcome("p", False, "server_error", 140.0)  # half-open by then; this failure re-opens
    assert b.states(140.0)["p"] == OPEN
    assert b.states(169.0)["p"] == OPEN
    assert b.states(170.0)["p"] == HALF_OPEN


def test_explicit_events_take_over_a_provider() -> None:
    b = Breakers(threshold=1, cooldown=30)
    b.explicit("p", HALF_OPEN)
    b.outcome("p", False, "server_error", 1.0)
    b.outcome("p", True, None, 2.0)
    assert b.states(1000.0)["p"] == HALF_OPEN
    b.explicit("p", OPEN)
    assert b.states(5000.0)["p"] == OPEN


def test_no_derived_breaker() -> None:
    b = Breakers(threshold=1, cooldown=30, derive=False)
    b.outcome("p", False, "server_error", 1.0)
    assert b.states(1.0) == {}
    b.explicit("q", OPEN)
    assert b.states(1.0) == {"q": OPEN}


def test_scrape_timing_does_not_change_the_outcome() -> None:
    """Live scrapes at any moment and a replay that looks only at the end agree."""
    seq = [("p", False, "server_error", 10.0 * i) for i in range(6)] + [("p", False, "timeout", 90.0)]
    live, replay = Breakers(threshold=3, cooldown=25), Breakers(threshold=3, cooldown=25)
    seen = []
    for ev in seq:
        live.outcome(*ev)
        seen.append(live.states(ev[3])["p"])
        live.states(ev[3] + 3.0)  # an extra scrape between events
    for ev in seq:
        replay.outcome(*ev)
    assert seen == [CLOSED, CLOSED, OPEN, OPEN, OPEN, OPEN, OPEN]
    assert live.states(90.0) == replay.states(90.0) == {"p": OPEN}
    assert live.states(115.0) == replay.states(115.0) == {"p": HALF_OPEN}
