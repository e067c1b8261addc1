"""Per-tenant budgets: spend in the current period (``periods``, in the ``--tz`` zone) divided by the limit.

Periods follow event time, so replay and live agree, and a tenant's ratio drops to 0 when the
newest event seen belongs to a later period than its last spend.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any

from llm_log_exporter.aggregate import codec
from llm_log_exporter.aggregate.periods import PERIODS, UTC, period_start

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

@dataclass(frozen=True)
class Budget:
    limit_usd: float
    period: str = "month"


class BudgetError(ValueError):
    pass


def _budget(raw: Any, where: str) -> Budget:
    if not isinstance(raw, dict):
        raise BudgetError(f"{where}: expected a table with limit_usd and period")
    unknown = set(raw) - {"limit_usd", "period"}
    if unknown:
        raise BudgetError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    limit = raw.get("limit_usd")
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
        raise BudgetError(f"{where}: limit_usd must be a positive number")
    period = raw.get("period", "month")
    if period not in PERIODS:
        raise BudgetError(f"{where}: period must be one of {', '.join(PERIODS)}")
    return Budget(float(limit), period)


def load_budgets(path: str | Path) -> tuple[dict[str, Budget], Budget | None]:
    """Parse a budgets TOML file → (per-tenant budgets, default budget or None)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise BudgetError(f"{path}: {err}") from None
    unknown = set(data) - {"default", "tenants"}
    if unknown:
        raise BudgetError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    default = _budget(data["default"], f"{path}: [default]") if "default" in data else None
    tenants_raw = data.get("tenants", {})
    if not isinstance(tenants_raw, dict):
        raise BudgetError(f"{path}: [tenants] must be a table")
    tenants = {str(name): _budget(raw, f"{path}: [tenants.{name}]") for name, raw in tenants_raw.items()}
    return tenants, default


class Budgets:
    """Spend windows per tenant plus explicit ``budget`` events, which win for their tenant."""

    def __init__(self, tenants: dict[str, Budget] | None = None, default: Budget | None = None,
                 zone: tzinfo = UTC) -> None:
        self.tenants = tenants or {}
        self.default = default
        self.zone = zone
        self.windows: dict[str, list[float]] = {}  # tenant → [period start, spend]
        self.explicit: dict[str, tuple[float, float]] = {}  # tenant → (spent, limit)

    @property
    def active(self) -> bool:
        """Whether any configured budget exists (explicit events need no spend tracking)."""
        return bool(self.tenants) or self.default is not None

    def budget_for(self, tenant: str) -> Budget | None:
        return self.tenants.get(tenant, self.default)

    def spend(self, tenant: str, cost: float, ts: float | None) -> None:
        budget = self.budget_for(tenant)
        if budget is None or ts is None:
            return
        start = period_start(ts, budget.period, self.zone)
        window = self.windows.get(tenant)
        if window is None or start > window[0]:
            self.windows[tenant] = [start, cost]
        elif start == window[0]:
            window[1] += cost
        # Spend from an earlier period than the current window is history: it cannot change the ratio.

    def set_explicit(self, tenant: str, spent: float, limit: float) -> None:
        self.explicit[tenant] = (spent, limit)

    def dump(self) -> dict[str, Any]:
        return {"windows": self.windows, "explicit": self.explicit}

    def load(self, data: Any) -> None:
        self.windows = {codec.text(t): [float(codec.number(a)), float(codec.number(b))]
                        for t, (a, b) in data["windows"].items()}
        self.explicit = {codec.text(t): (float(codec.number(a)), float(codec.number(b)))
                         for t, (a, b) in data["explicit"].items()}

    def ratios(self, now: float | None) -> dict[str, float]:
        out: dict[str, float] = dict.fromkeys(self.tenants, 0.0)
        for tenant, (start, spent) in self.windows.items():
            budget = self.budget_for(tenant)
            if budget is None:
                continue
            current = now is None or period_start(now, budget.period, self.zone) <= start
            out[tenant] = spent / budget.limit_usd if current else 0.0
        for tenant, (spent, limit) in self.explicit.items():
            out[tenant] = spent / limit if limit > 0 else 0.0
        return out
