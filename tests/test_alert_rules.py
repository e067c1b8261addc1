"""The alert rules as an on-call engineer meets them: every alert links its own runbook section, has a
promtool unit test that makes it fire, and those tests feed the series shapes the exporter really exports
(names and label sets from the family table). Ratio alerts carry a traffic floor and keep client errors
out of provider failures. (promtool itself runs the tests in tests/test_deploy_prometheus.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llm_log_exporter.aggregate.families import FAMILIES
from tests.helpers import ROOT

yaml = pytest.importorskip("yaml")

RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
UNIT_TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*_test.yml"))
RUNBOOK = ROOT / "docs" / "runbook.md"
CLIENT_ERRORS = ("bad_request", "context_window")
SCRAPE_LABELS = {"job", "instance", "pod"}


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_links_its_runbook_section() -> None:
    headings = {slug(h): h for h in re.findall(r"^## (.+)$", RUNBOOK.read_text(), re.M)}
    names = [rule["alert"] for rule in alerts()]
    for rule in alerts():
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path.endswith("/docs/runbook.md") and anchor in headings, (rule["alert"], url)
        assert headings[anchor] == rule["alert"]
    assert sorted(headings.values()) == sorted(names)  # no section for an alert that does not exist
    section = RUNBOOK.read_text().split("## LLMLogExporterCannotOpenFile")[1].split("\n## ")[0]
    assert "**Fix**" in section and "**Look**" in section


def test_every_alert_has_a_unit_test_that_makes_it_fire() -> None:
    fired = set()
    for path in UNIT_TESTS:
        doc = yaml.safe_load(path.read_text())
        assert doc["rule_files"] == ["../rules.yml"], path
        for case in doc["tests"]:
            fired |= {t["alertname"] for t in case.get("alert_rule_test", []) if t["exp_alerts"]}
    assert fired == {rule["alert"] for rule in alerts()}


def _exported() -> dict[str, set[str]]:
    """Series name → label names, for every sample name the exporter serves with its default prefix."""
    out: dict[str, set[str]] = {}
    for family in FAMILIES:
        name = family.exposed("llm")
        labels = set(family.labels)
        if family.type == "counter":
            out[f"{name}_total"] = labels
        elif family.type == "histogram":
            out[f"{name}_bucket"] = labels | {"le"}
            out[f"{name}_sum"] = out[f"{name}_count"] = labels
        else:
            out[name] = labels
    return out


@pytest.mark.parametrize("path", UNIT_TESTS, ids=[p.name for p in UNIT_TESTS])
def test_unit_tests_feed_the_series_the_exporter_exports(path: Path) -> None:
    exported = _exported()
    for case in yaml.safe_load(path.read_text())["tests"]:
        for item in case["input_series"]:
            match = re.fullmatch(r"(\w+)\{(.*)\}", item["series"])
            assert match, item["series"]
            name = match.group(1)
            labels = set(re.findall(r'(\w+)="', match.group(2)))
            if name == "up":
                continue
            assert name in exported, f"{name}: the exporter serves no such series"
            assert labels - SCRAPE_LABELS == exported[name], (item["series"], sorted(exported[name]))


def test_ratio_alerts_have_a_traffic_floor_and_leave_client_errors_out() -> None:
    records = {rule["record"]: rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"]
               for rule in group["rules"] if "record" in rule}
    for rule in alerts():
        expr = rule["expr"]
        if "ratio" in expr and "budget" not in expr:
            assert re.search(r"increase\(llm_requests_total\[\w+\]\)\) >= \d+", expr), rule["alert"]
        for record in re.findall(r"provider:llm_provider_failure_ratio:rate\w+", expr):
            assert all("error_type!~" in records[record] and e in records[record] for e in CLIENT_ERRORS), record
    names = {rule["alert"] for rule in alerts()}
    assert {"LLMProviderErrorRatioHigh", "LLMClientErrorRatioHigh", "LLMErrorBudgetBurnFast", "LLMErrorBudgetBurnSlow",
            "LLMSpendSpike", "LLMLogExporterNoNewEvents", "LLMCostUnknown", "LLMLabelOverflow", "LLMBudgetExceeded",
            "LLMLogExporterCannotOpenFile"} <= names
    burn = next(rule["expr"] for rule in alerts() if rule["alert"] == "LLMErrorBudgetBurnFast")
    assert all(f"rate{w}" in burn for w in ("5m", "30m", "1h", "6h"))  # two windows per burn rate
