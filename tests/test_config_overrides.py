"""Config precedence is said out loud: an LLM_LOG_EXPORTER_* variable (or a flag) that overrides a key of
the --config file is named at start-up. The container image sets LLM_LOG_EXPORTER_FILE, so a `file:` key
in a mounted config file used to be ignored without a word."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from llm_log_exporter import cli


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LLM_LOG_EXPORTER_"):
            monkeypatch.delenv(name)


def run(args: list[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """The daemon command as the CLI runs it, up to the daemon itself (recorded, not started)."""
    seen: dict[str, object] = {}
    monkeypatch.setattr(cli, "run_daemon", lambda files, **options: seen.update(files=files, **options))
    cli.main.main(args, prog_name="llm-log-exporter", standalone_mode=False)
    return seen


def test_an_environment_variable_overriding_a_config_key_is_named(tmp_path: Path, monkeypatch, caplog) -> None:
    config = tmp_path / "exporter.yml"
    config.write_text("file: [/data/from-config.jsonl]\nnamespace: fromfile\nmax-tenants: 3\nport: 1111\n")
    monkeypatch.setenv("LLM_LOG_EXPORTER_FILE", "/var/log/llm/usage.jsonl")  # what the image sets
    monkeypatch.setenv("LLM_LOG_EXPORTER_MAX_TENANTS", "7")
    with caplog.at_level(logging.INFO, logger="llm_log_exporter"):
        seen = run(["--config", str(config), "--namespace", "fromflag"], monkeypatch)
    assert seen["files"] == ("/var/log/llm/usage.jsonl",) and seen["max_tenants"] == 7  # precedence unchanged
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("LLM_LOG_EXPORTER_FILE" in w and "'file'" in w and str(config) in w for w in warnings), warnings
    assert any("LLM_LOG_EXPORTER_MAX_TENANTS" in w and "'max-tenants'" in w for w in warnings), warnings
    assert any("--namespace on the command line overrides 'namespace'" in r.getMessage() for r in caplog.records)
    assert not any("'port'" in w for w in warnings)  # a key nobody overrides is not mentioned


def test_nothing_is_said_without_overrides(tmp_path: Path, monkeypatch, caplog) -> None:
    config = tmp_path / "exporter.yml"
    config.write_text("file: [/data/a.jsonl]\n")
    monkeypatch.setenv("LLM_LOG_EXPORTER_NAMESPACE", "env")  # not a key of the file: plain configuration
    with caplog.at_level(logging.INFO, logger="llm_log_exporter"):
        seen = run(["--config", str(config)], monkeypatch)
    assert seen["files"] == ("/data/a.jsonl",)
    assert "overrides" not in caplog.text
