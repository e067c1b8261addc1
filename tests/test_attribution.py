"""Attribution labels: the ``labels`` object of a line, and ``--extra-label`` exporting one under the guard."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llm_log_exporter.aggregate.usage import COST, Usage
from llm_log_exporter.cli import main
from llm_log_exporter.events import CallPart, InvalidLine, Request
from llm_log_exporter.parsers import get_parser, native
from llm_log_exporter.parsers.options import ParserOptions
from tests.helpers import FIXTURES, event_line, metrics_for_files, value

V181 = FIXTURES / "litellm-1.81.10_slo.jsonl"


def project_log(path: Path) -> Path:
    path.write_text(
        event_line(model="m", provider="p", cost_usd=0.5, labels={"project": "alpha", "user": "u1"})
        + event_line(model="m", provider="p", cost_usd=0.25, labels={"project": "beta"})
        + event_line(model="m", provider="p", cost_usd=1.0)  # no labels: project ""
        + event_line(model="m", provider="p", cost_usd=2.0, labels={"project": "gamma"})
        + event_line(model="m", provider="p", cost_usd=4.0, labels={"project": "delta"})
        + event_line(model="m", provider="p", cost_usd=8.0, labels={"project": "alpha"})
        + event_line(model="m", provider="p", status="failure", error_type="rate_limit", labels={"project": "beta"})
    )
    return path


def test_extra_label_project_splits_usage_by_project_under_the_guard(tmp_path: Path) -> None:
    log = project_log(tmp_path / "u.jsonl")
    s = metrics_for_files([log], extra_label=("project",), max_extra_label_values=2)
    base = {"tenant_id": "", "provider": "p", "model": "m"}
    assert value(s, "llm_cost_usd_total", **base, project="alpha") == 8.5
    assert value(s, "llm_cost_usd_total", **base, project="beta") == 0.25
    assert value(s, "llm_cost_usd_total", **base, project="") == 1.0  # lines without it; not counted in the limit
    assert value(s, "llm_cost_usd_total", **base, project="__other__") == 6.0  # gamma, delta past the limit
    assert value(s, "llm_requests_total", **base, project="alpha", status="success") == 2
    assert value(s, "llm_requests_total", **base, project="beta", status="failure") == 1
    assert value(s, "llm_provider_errors_total", provider="p", error_type="rate_limit") == 1
    assert value(s, "llm_exporter_label_overflow_total", label="project") == 2
    # every usage family carries it; the gateway view does not
    assert all(("project" in dict(labels)) for name, labels in s if name.startswith("llm_tokens_total"))
    # not asked for: no such label, same totals
    plain = metrics_for_files([log])
    assert not any("project" in dict(labels) for _, labels in plain)
    assert value(plain, "llm_cost_usd_total", **base) == 15.75


def test_extra_label_from_flags_environment_and_config_file(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LLM_LOG_EXPORTER_"):
            monkeypatch.delenv(name)

    def params(*args: str) -> tuple[str, ...]:
        with main.make_context("llm-log-exporter", list(args)) as ctx:
            return ctx.params["extra_label"]

    assert params() == ()
    assert params("--extra-label", "project", "--extra-label", "repo") == ("project", "repo")
    config = tmp_path / "c.yml"
    config.write_text("extra-label: [team_alias]\n")
    assert params("--config", str(config)) == ("team_alias",)
    monkeypatch.setenv("LLM_LOG_EXPORTER_EXTRA_LABEL", "project user")
    assert params("--config", str(config)) == ("project", "user")
    for bad in ("model", "status", "le", "__name__", "a-b"):
        with pytest.raises(Exception, match="label"):
            params("--extra-label", bad)


def test_labels_object_is_validated() -> None:
    good = {"v": 1, "event": "request", "model": "m", "labels": {"project": "a", "key_alias": "k"}}
    assert native.parse(good)[0].labels == {"project": "a", "key_alias": "k"}
    for labels in ([1], {"project": 1}, {"bad-name": "x"}, {"__x": "y"}, {f"l{i}": "v" for i in range(17)},
                   {"p": "v" * 1025}):
        with pytest.raises(InvalidLine, match="bad_field"):
            native.parse({**good, "labels": labels})
    assert native.parse({**good, "labels": None})[0].labels is None


def test_litellm_payload_fills_the_proxy_attribution_and_asked_metadata_keys() -> None:
    slo = json.loads(V181.read_text().splitlines()[0])
    slo["model_group"] = "my-gpt"
    slo["end_user"] = "customer-9"
    slo["metadata"].update(user_api_key_alias="ci-key", user_api_key_team_alias="platform",
                           user_api_key_user_id="ada", requester_metadata={"project": "apollo", "other": "x"})
    slo["response"]["model"] = "gpt-4o-mini-2024-07-18"
    (part,) = get_parser("litellm", ParserOptions(label_keys=("project",)))(slo)
    event = part.request if isinstance(part, CallPart) else part  # payloads of one call carry its trace id
    assert event.labels == {"key_alias": "ci-key", "team_alias": "platform", "user": "ada",
                            "end_user": "customer-9", "request_model": "my-gpt",
                            "response_model": "gpt-4o-mini-2024-07-18", "project": "apollo"}
    (part,) = get_parser("litellm")(slo)
    plain = part.request if isinstance(part, CallPart) else part
    assert "project" not in plain.labels and "other" not in plain.labels  # only keys asked for


def test_extra_labels_survive_the_state_file() -> None:
    usage = Usage(extra_labels=("project",), max_extra_label_values=1)
    for project, cost in (("a", 1.0), ("b", 2.0), ("", 4.0)):
        usage.apply(Request(model="m", cost_usd=cost, labels={"project": project} if project else None))
    restored = Usage(extra_labels=("project",), max_extra_label_values=1)
    restored.load(json.loads(json.dumps(usage.dump())))
    restored.apply(Request(model="m", cost_usd=8.0, labels={"project": "c"}))
    costs = {key[3]: rec[COST] for key, rec in restored.copy_records()}
    assert costs == {"a": 1.0, "__other__": 10.0, "": 4.0}
    with pytest.raises(ValueError):
        Usage().load(usage.dump())  # a state of other --extra-label columns does not load


def test_report_by_an_attribution_label(tmp_path: Path) -> None:
    from click.testing import CliRunner

    log = project_log(tmp_path / "u.jsonl")
    result = CliRunner().invoke(main, ["report", str(log), "--by", "project,model", "-f", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["project"]: (row["requests"], row["cost_usd"]) for row in json.loads(result.output)["rows"]}
    assert rows == {"alpha": (2, 8.5), "beta": (2, 0.25), "": (1, 1.0), "gamma": (1, 2.0), "delta": (1, 4.0)}
    typo = CliRunner().invoke(main, ["report", str(log), "--by", "projcet"])
    assert typo.exit_code == 2 and "projcet" in typo.output


def test_replay_carries_extra_labels_and_the_otel_names(tmp_path: Path) -> None:
    import gzip
    import subprocess
    import sys

    from tests.helpers import ROOT

    log = project_log(tmp_path / "u.jsonl")
    out = tmp_path / "out.om"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "llm_log_exporter", "replay", str(log), "-o", str(out),
                           "--extra-label", "project", "--naming", "otel", "--quiet"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    data = out.read_bytes()
    text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode()
    assert 'llm_cost_usd_total{tenant_id="",provider="p",model="m",project="alpha"} 8.5' in text
    assert 'gen_ai_client_token_usage_count{gen_ai_operation_name="chat",gen_ai_provider_name="p",' \
           'gen_ai_request_model="m",error_type="",tenant_id="",project="alpha",gen_ai_token_type="input"} 2' in text
