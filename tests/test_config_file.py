"""--config FILE: YAML keys are the long option names; flags > LLM_LOG_EXPORTER_* > file > defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_log_exporter.cli import main
from llm_log_exporter.config_file import config_options
from llm_log_exporter.daemon import Config
from tests.helpers import ROOT, ExporterProcess, free_port, value


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LLM_LOG_EXPORTER_"):
            monkeypatch.delenv(name)


def params(*args: str) -> dict[str, Any]:
    """What the real click command resolves from these arguments (and the environment)."""
    with main.make_context("llm-log-exporter", list(args)) as ctx:
        return dict(ctx.params)


def effective(p: dict[str, Any]) -> tuple[Config, str]:
    """The daemon's config as run_daemon builds it (None means the built-in default)."""
    options = {k: v for k, v in p.items() if v is not None and k not in ("file", "log_level")}
    return Config(files=list(p["file"]), **options), p["log_level"]


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LLM_LOG_EXPORTER_")}
    return subprocess.run(
        [sys.executable, "-m", "llm_log_exporter", *args], capture_output=True, text=True, timeout=60, cwd=cwd,
        env={**base, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def test_config_example_loads_and_equals_the_defaults(tmp_path: Path) -> None:
    proc = cli("config-example")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    # Every option a user can set is in the example, each with its help as a comment.
    keys = set(yaml.safe_load(text))
    assert keys == set(config_options(main)), keys ^ set(config_options(main))
    assert "# Distinct tenant_id values kept.\nmax-tenants: 1000\n" in text
    example = tmp_path / "example.yml"
    example.write_text(text)
    assert effective(params("--config", str(example))) == effective(params())
    # ...and it is a working starting point: uncomment the file line and it runs.
    assert effective(params("--config", str(example), "--file", "x"))[0].files == ["x"]


def test_file_values_reach_the_daemon_config(tmp_path: Path) -> None:
    (tmp_path / "budgets.toml").write_text("[default]\nlimit_usd = 5\n")
    config = tmp_path / "c.yml"
    config.write_text(
        "file:\n  - logs/a.jsonl\n  - /abs/b.jsonl\n"
        "port: 9999\nnamespace: aigateway\nmax_tenants: 7\nmax-models: 8\n"
        "from-end: true\nderived-breaker: false\nbuckets: [0.5, 1, 2]\nttft-buckets: '0.1,0.2'\n"
        "budgets: budgets.toml\nexclude: '*.gz'\nlog-level: debug\nstream-timeout:\n"
    )
    cfg, level = effective(params("--config", str(config)))
    # Relative paths are relative to the config file's directory, as in Prometheus.
    assert cfg.files == [str(tmp_path / "logs/a.jsonl"), "/abs/b.jsonl"]
    assert cfg.budgets == str(tmp_path / "budgets.toml")
    assert (cfg.port, cfg.namespace, cfg.max_tenants, cfg.max_models) == (9999, "aigateway", 7, 8)
    assert cfg.from_end is True and cfg.derived_breaker is False
    assert tuple(cfg.buckets) == (0.5, 1.0, 2.0) and tuple(cfg.ttft_buckets) == (0.1, 0.2)
    assert list(cfg.exclude) == ["*.gz"] and level == "debug"
    assert cfg.stream_timeout == 600.0  # an empty value means the default


def test_precedence_flags_over_env_over_file_over_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.yml"
    config.write_text("file: [from-file.jsonl]\nport: 1111\nnamespace: fromfile\nmax-tenants: 3\n")
    monkeypatch.setenv("LLM_LOG_EXPORTER_PORT", "2222")
    monkeypatch.setenv("LLM_LOG_EXPORTER_NAMESPACE", "fromenv")
    p = params("--config", str(config), "--namespace", "fromflag")
    assert p["namespace"] == "fromflag"  # flag beats env and file
    assert p["port"] == 2222  # env beats file
    assert p["max_tenants"] == 3  # file beats default
    assert p["max_models"] == 500  # default
    assert p["file"] == (str(tmp_path / "from-file.jsonl"),)
    # The config file itself can come from the environment (a ConfigMap mounted at a fixed path).
    monkeypatch.setenv("LLM_LOG_EXPORTER_CONFIG", str(config))
    assert params()["max_tenants"] == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("file: [a]\nmax_tenant: 3\n", "unknown key 'max_tenant' (did you mean 'max-tenants'?)"),
        ("colour: red\n", "unknown key 'colour'"),
        ("config: other.yml\n", "unknown key 'config'"),
        ("max-tenants: 1\nmax_tenants: 2\n", "key 'max_tenants' given twice"),
        ("- file\n", "the top level must be a mapping"),
        ("port: [1, 2]\n", "port: expected a single value, not a list"),
        ("file: {a: 1}\n", "file: expected a value, not a mapping"),
        ("port: : :\n", "not valid YAML"),
    ],
)
def test_bad_config_files_are_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "bad.yml"
    config.write_text(content)
    proc = cli("--config", str(config))
    assert proc.returncode == 2, proc
    assert f"config file {config}: {message}" in proc.stderr, proc.stderr


def test_bad_value_names_the_option(tmp_path: Path) -> None:
    config = tmp_path / "bad.yml"
    config.write_text("file: [x]\nport: not-a-number\n")
    proc = cli("--config", str(config))
    assert proc.returncode == 2 and "'--port'" in proc.stderr and "not-a-number" in proc.stderr, proc.stderr


def test_without_pyyaml_one_line_error_names_the_extra(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("file: [x]\n")
    code = "import sys; sys.modules['yaml'] = None; from llm_log_exporter.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "--config", str(config)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("Error: --config needs PyYAML: pip install pyyaml "
                                   "(from a checkout of llm-log-exporter: pip install '.[yaml]')")
    # Without --config nothing needs PyYAML.
    proc = subprocess.run([sys.executable, "-c", code, "config-example"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0 and "max-tenants: 1000" in proc.stdout


@pytest.mark.slow
def test_daemon_runs_from_a_config_file(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "usage.jsonl").write_text(
        '{"v": 1, "event": "request", "model": "m", "provider": "p", "tenant_id": "t", "prompt_tokens": 4}\n'
    )
    config = tmp_path / "exporter.yml"
    config.write_text("file: logs/usage.jsonl\nnamespace: aigateway\nport: 1\nhost: 192.0.2.1\n")
    # The ExporterProcess flags --host/--port override the file's unusable values.
    with ExporterProcess(["--config", str(config)]) as exp:
        exp.wait_ready()
        samples = exp.scrape()
        assert value(samples, "aigateway_tokens_total", type="input", tenant_id="t") == 4
        assert not any(name.startswith("llm_tokens") for name, _ in samples)
    assert exp.proc.returncode == 0, exp.stderr


@pytest.mark.slow
def test_healthcheck_probes_the_configured_port(tmp_path: Path) -> None:
    log = tmp_path / "usage.jsonl"
    log.write_text("")
    with ExporterProcess(["--file", str(log)]) as exp:
        exp.wait_ready()
        ok = cli("healthcheck", env={"LLM_LOG_EXPORTER_PORT": str(exp.port), "LLM_LOG_EXPORTER_HOST": "0.0.0.0"})
        assert ok.returncode == 0, ok
        assert ok.stdout.strip() == f"http://127.0.0.1:{exp.port}/healthz: 200"
        config = tmp_path / "c.yml"
        config.write_text(f"host: 127.0.0.1\nport: {exp.port}\n")
        assert cli("--config", str(config), "healthcheck").returncode == 0
    dead = cli("--port", str(free_port()), "healthcheck", "--timeout", "1")
    assert dead.returncode == 1 and "/healthz" in dead.stderr, dead
