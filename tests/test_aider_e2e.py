"""Real aider, unmodified, with the hook installed: one run yields both an analytics log and a
callback log, and the exporter reads both.

aider-chat 0.86.2 runs in its own venv (tests/aider_env.py; created once per machine, about 40 s
from PyPI) against tests/openai_stub.py on 127.0.0.1, with LITELLM_LOCAL_MODEL_COST_MAP=True and a
pre-seeded price cache so nothing touches the network.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_log_exporter.writer.install import install, uninstall
from tests.aider_env import aider_venv, make_home, run_aider
from tests.helpers import ExporterProcess, metrics_for_files, value
from tests.openai_stub import COMPLETION_TOKENS, PROMPT_TOKENS, OpenAIStub

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def aider() -> Iterator[Path]:
    venv = aider_venv()
    install(str(venv))
    yield venv
    uninstall(str(venv))


@pytest.fixture(scope="session")
def runs(aider: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Three aider runs: streamed (aider's default), non-streamed, and one the server rejects."""
    tmp = tmp_path_factory.mktemp("aider")
    home = make_home(tmp / "home", aider)
    # aider works in a subdirectory of a git repository (run with --no-git, it leaves the repository alone)
    subprocess.run(["git", "init", "-q", str(tmp / "webshop")], check=True)
    analytics, usage = tmp / "analytics.jsonl", tmp / "usage.jsonl"
    outcomes = []
    with OpenAIStub() as stub:
        for extra, fail in (((), None), (("--no-stream",), None), (("--no-stream",), 400)):
            stub.fail_status = fail
            run = run_aider(aider, home, tmp / "webshop" / "src", stub.base_url, analytics, usage, extra=extra)
            assert run.returncode == 0, run.stdout + run.stderr
            outcomes.append(run)
        served = len(stub.requests)
        asked = [bool((body.get("stream_options") or {}).get("include_usage")) for body in stub.requests]
    return {"analytics": analytics, "usage": usage, "served": served, "runs": outcomes, "asked_usage": asked}


def lines(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_llm_call_is_in_both_logs(runs: dict) -> None:  # type: ignore[type-arg]
    analytics = lines(runs["analytics"])
    usage = [e for e in lines(runs["usage"]) if e["event"] == "request"]  # (the stream also has a stream_start)
    sends = [row for row in analytics if row["event"] == "message_send"]
    assert runs["served"] == 3 == len(usage)  # one LLM call per aider run
    assert len(sends) == 2 == sum(e["status"] == "success" for e in usage)
    assert [e["stream"] for e in usage] == [True, False, False]
    # the non-streamed call: both logs carry the server's usage numbers
    assert (sends[1]["properties"]["prompt_tokens"], sends[1]["properties"]["completion_tokens"]) == (
        PROMPT_TOKENS, COMPLETION_TOKENS) == (usage[1]["prompt_tokens"], usage[1]["completion_tokens"])
    # aider streams without asking for a usage chunk; the hook makes the stream ask, so the line carries the
    # server's numbers (aider's own analytics still estimates them from the text)
    assert runs["asked_usage"] == [True, False, False]
    assert (usage[0]["prompt_tokens"], usage[0]["completion_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert [e["tokens_estimated"] for e in usage] == [False, False, False]
    assert sends[0]["properties"]["prompt_tokens"] > 0
    assert usage[2]["status"] == "failure" and usage[2]["error_type"] == "bad_request"


def test_request_counts_agree_through_the_exporter(runs: dict) -> None:  # type: ignore[type-arg]
    from_analytics = metrics_for_files([runs["analytics"]])
    from_hook = metrics_for_files([runs["usage"]])
    assert value(from_analytics, "llm_requests_total", status="success") == 2
    assert value(from_hook, "llm_requests_total", status="success") == 2
    assert value(from_hook, "llm_requests_total", status="failure") == 1  # aider's analytics cannot see it
    assert value(from_analytics, "llm_requests_total", status="failure") == 0
    mini = {"provider": "openai", "model": "gpt-4o-mini"}
    assert value(from_analytics, "llm_requests_total", **mini) == 2
    assert value(from_hook, "llm_requests_total", **mini) == 3
    assert value(from_hook, "llm_request_duration_seconds_count", **mini) == 3
    assert value(from_hook, "llm_time_to_first_token_seconds_count", **mini) == 1
    assert not any(name.startswith("llm_request_duration") for name, _ in from_analytics)
    assert value(from_hook, "llm_tokens_total", type="input") == 2 * PROMPT_TOKENS  # the server's, stream included
    assert ("llm_exporter_estimated_tokens_total", frozenset({("model", "gpt-4o-mini"), ("type", "input")})) \
        not in from_hook
    assert value(from_analytics, "llm_cost_usd_total") > 0 and value(from_hook, "llm_cost_usd_total") > 0


def test_real_daemon_follows_both_logs(runs: dict) -> None:  # type: ignore[type-arg]
    with ExporterProcess(["--file", str(runs["analytics"]), "--file", str(runs["usage"])]) as exp:
        exp.wait_ready()
        s = exp.scrape()
        events = lines(runs["usage"])
        assert [e["event"] for e in events].count("request") == 3
        assert value(s, "llm_exporter_lines_total", file=str(runs["usage"]), result="parsed") == len(events)
        assert value(s, "llm_exporter_lines_total", file=str(runs["analytics"]), result="parsed") == 2
        assert value(s, "llm_exporter_lines_total", result="invalid") == 0
        assert value(s, "llm_requests_total", status="success") == 4  # two calls, seen by both logs



def test_hook_records_the_repository_and_report_gives_spend_per_repo(runs: dict) -> None:  # type: ignore[type-arg]
    from click.testing import CliRunner

    from llm_log_exporter.cli import main

    usage = [e for e in lines(runs["usage"]) if e["event"] == "request"]
    assert [e["labels"]["repo"] for e in usage] == ["webshop"] * 3  # the top-level directory's name, nothing else
    assert str(runs["usage"].parent) not in runs["usage"].read_text()
    by_repo = metrics_for_files([runs["usage"]], extra_label=("repo",))
    assert value(by_repo, "llm_requests_total", repo="webshop") == 3
    assert value(by_repo, "llm_cost_usd_total", repo="webshop") == value(by_repo, "llm_cost_usd_total") > 0
    result = CliRunner().invoke(main, ["report", str(runs["usage"]), "--by", "repo", "-f", "json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)["rows"]
    assert row["repo"] == "webshop" and row["requests"] == 3 and row["cost_usd"] > 0
