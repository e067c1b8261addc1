"""Budget files, UTC periods and the usage ratio on event time."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from llm_log_exporter.aggregate.budgets import Budget, BudgetError, Budgets, load_budgets
from llm_log_exporter.aggregate.periods import period_start


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def test_period_starts() -> None:
    t = ts("2026-11-25T17:30:00")  # a Wednesday
    assert period_start(t, "day") == ts("2026-11-25T00:00:00")
    assert period_start(t, "week") == ts("2026-11-23T00:00:00")
    assert period_start(t, "month") == ts("2026-11-01T00:00:00")


def test_load_budgets(tmp_path: Path) -> None:
    f = tmp_path / "budgets.toml"
    f.write_text('[default]\nlimit_usd = 10\nperiod = "day"\n\n[tenants.acme]\nlimit_usd = 500\n')
    tenants, default = load_budgets(f)
    assert default == Budget(10.0, "day")
    assert tenants == {"acme": Budget(500.0, "month")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tenants.a]\nlimit_usd = 0\n", "positive"),
        ("[tenants.a]\nlimit_usd = 5\nperiod = 'year'\n", "period"),
        ("[tenants.a]\nlimit = 5\n", "unknown key 'limit'"),
        ("[budget]\n", "unknown key 'budget'"),
        ("not toml [", "budgets.toml"),
    ],
)
def test_bad_budget_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "budgets.toml"
    f.write_text(text)
    with pytest.raises(BudgetError, match=message):
        load_budgets(f)


def test_ratio_accumulates_within_the_period_and_resets_at_rollover() -> None:
    b = Budgets({"acme": Budget(10.0, "day")})
    assert b.ratios(None) == {"acme": 0.0}
    b.spend("acme", 2.5, ts("2026-11-23T10:00:00"))
    b.spend("acme", 5.0, ts("2026-11-23T23:59:59"))
    assert b.ratios(ts("2026-11-23T23:59:59")) == {"acme": 0.75}
    # The newest event (any tenant) is in the next day: acme has spent nothing today.
    assert b.ratios(ts("2026-11-24T00:00:00")) == {"acme": 0.0}
    b.spend("acme", 1.0, ts("2026-11-24T08:00:00"))
    assert b.ratios(ts("2026-11-24T08:00:00")) == {"acme": 0.1}
    # A late event from yesterday does not touch today's window.
    b.spend("acme", 100.0, ts("2026-11-23T22:00:00"))
    assert b.ratios(ts("2026-11-24T08:00:00")) == {"acme": 0.1}


def test_over_budget_exceeds_one() -> None:
    b = Budgets(default=Budget(1.0, "month"))
    b.spend("x", 1.5, ts("2026-11-02T00:00:00"))
    assert b.ratios(ts("2026-11-30T23:00:00")) == {"x": 1.5}
    assert b.ratios(ts("2026-12-01T00:00:00")) == {"x": 0.0}


def test_tenant_without_budget_not_tracked() -> None:
    b = Budgets({"acme": Budget(10.0)})
    b.spend("other", 5.0, ts("2026-11-02T00:00:00"))
    assert b.ratios(None) == {"acme": 0.0}


def test_explicit_budget_event_overrides() -> None:
    b = Budgets({"acme": Budget(10.0, "day")})
    b.spend("acme", 5.0, ts("2026-11-23T10:00:00"))
    b.set_explicit("acme", 30.0, 40.0)
    b.set_explicit("beta", 1.0, 4.0)
    assert b.ratios(ts("2026-11-23T10:00:00")) == {"acme": 0.75, "beta": 0.25}
