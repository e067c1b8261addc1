"""The Grafana dashboard as an SRE reads it: single numbers first, cost and tokens by model and by provider,
units that say what a number is, and every variable applied to every series that has its label (the
labels come from the family table). Every query returning data is checked against a real Prometheus in
tests/test_deploy_prometheus.py."""

from __future__ import annotations

import json
import re

from llm_log_exporter.aggregate.families import FAMILIES
from tests.helpers import ROOT

BOARD = json.loads((ROOT / "dashboards" / "llm-usage.json").read_text())
PANELS = [p for p in BOARD["panels"] if p["type"] != "row"]
VARIABLES = {"job": "job", "tenant_id": "tenant", "provider": "provider", "model": "model"}
_SELECTOR = re.compile(r"(\$\{namespace\}|llm_exporter|llm|up)(_?\w*)\{([^}]*)\}")


def _labels_of(name: str) -> set[str]:
    """The labels of a sample name (``${namespace}_cost_usd_total`` or ``llm_exporter_...``)."""
    for family in FAMILIES:
        base = family.exposed("${namespace}")
        if name in (base, f"{base}_total", f"{base}_bucket", f"{base}_sum", f"{base}_count"):
            return set(family.labels)
    raise AssertionError(f"{name}: not a series the exporter serves")


def _selectors() -> list[tuple[str, str, str]]:
    out = []
    for panel in PANELS:
        for target in panel["targets"]:
            for prefix, rest, matchers in _SELECTOR.findall(target["expr"]):
                out.append((panel["title"], prefix + rest, matchers))
    return out


def test_the_top_row_is_single_numbers() -> None:
    top = sorted((p for p in PANELS if p["gridPos"]["y"] == 0), key=lambda p: p["gridPos"]["x"])
    assert all(p["type"] == "stat" for p in top)
    titles = [p["title"].lower() for p in top]
    assert titles[:5] == ["spend today", "spend this month", "requests", "error %", "p95 latency"]
    today, month = top[0], top[1]
    assert today["timeFrom"] == "now/d" and month["timeFrom"] == "now/M"  # since midnight, since the 1st
    assert all("[$__range]" in t["expr"] for p in top for t in p["targets"])
    assert [p["fieldConfig"]["defaults"]["unit"] for p in top[:5]] == ["currencyUSD", "currencyUSD", "short",
                                                                        "percentunit", "s"]
    assert "histogram_quantile(0.95" in top[4]["targets"][0]["expr"]
    assert min(p["gridPos"]["y"] for p in PANELS if "cost" in p["title"].lower() and p["type"] != "stat") <= 6


def test_cost_and_tokens_by_model_and_by_provider_and_unknown_costs() -> None:
    def exprs(title_part: str) -> list[str]:
        return [t["expr"] for p in PANELS if title_part in p["title"].lower() for t in p["targets"]]

    for what, family in (("cost per hour by", "cost_usd_total"), ("tokens per second by", "tokens_total")):
        for key in ("model", "provider", "tenant" if what.startswith("cost") else "type"):
            found = exprs(f"{what} {key}")
            label = "tenant_id" if key == "tenant" else key
            assert found and f"sum by ({label}" in found[0] and family in found[0], (what, key)
    assert any("llm_exporter_cost_unknown_total" in e for e in exprs("unknown cost"))


def test_units_say_what_the_numbers_are() -> None:
    for panel in PANELS:
        unit = panel["fieldConfig"]["defaults"]["unit"]
        exprs = " ".join(t["expr"] for t in panel["targets"])
        if "rate(" in exprs and "_tokens_total" in exprs:
            assert unit == "suffix: tokens/s", panel["title"]
        if "cost_usd_total" in exprs:
            assert unit == "currencyUSD", panel["title"]
        if "rate(" in exprs and "histogram_quantile" not in exprs and "/" not in exprs:
            assert unit != "short", panel["title"]  # a rate is per second: reqps, tokens/s, lines/s


def test_every_variable_applies_to_every_selector_with_its_label() -> None:
    selectors = _selectors()
    assert len(selectors) > 40
    for title, name, matchers in selectors:
        if name == "up":
            assert 'job=~"$job"' in matchers
            continue
        labels = _labels_of(name)
        for label, variable in VARIABLES.items():
            if label == "job" or label in labels:
                assert f'{label}=~"${variable}"' in matchers, (title, name, label)
    by_provider = next(p for p in PANELS if p["title"] == "Error rate by provider")
    assert 'tenant_id=~"$tenant"' in by_provider["targets"][0]["expr"]
    assert 'model=~"$model"' in by_provider["targets"][0]["expr"]
