"""install-hook / uninstall-hook against real interpreters: lazy, self-contained, and harmless when broken."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from llm_log_exporter.cli import main
from llm_log_exporter.writer.install import HOOK_PACKAGE, LEGACY_MODULES, PTH_NAME, install, uninstall
from tests.helpers import make_venv

pytest.importorskip("litellm")  # the target environments below see the test environment's litellm


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A fresh venv that sees the test environment's litellm (virtualenv or not) but not this package."""
    return make_venv(tmp_path / "venv")


def run(venv: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    full.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", **env})
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, env=full,
                          timeout=120)


CALL = """
import os, time, litellm
litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], mock_response="hello")
try:
    litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                       mock_response="litellm.RateLimitError")
except litellm.RateLimitError:
    pass
# Sync successes are logged on litellm's thread pool, possibly after the failure (logged in this thread):
# when the test expects lines, wait for them, however loaded the machine, before the interpreter exits.
expected, deadline = int(os.environ.get("EXPECT_LINES", "0")), time.monotonic() + 30
while expected and time.monotonic() < deadline:
    try:
        with open(os.environ["LLM_USAGE_LOG"], "rb") as f:
            if f.read().count(b"\\n") >= expected:
                break
    except OSError:
        pass
    time.sleep(0.02)
print("ok")
"""


def test_install_is_lazy_and_self_contained(target: Path, tmp_path: Path) -> None:
    site, state = install(str(target / "bin" / "python"))
    assert {p.name for p in site.iterdir()} >= {PTH_NAME, HOOK_PACKAGE}
    copied = {str(p.relative_to(site / HOOK_PACKAGE)) for p in (site / HOOK_PACKAGE).rglob("*.py")}
    assert copied >= {"__init__.py", "writer/callback.py", "writer/logfile.py", "schema/litellm.py"}
    assert "writer/install.py" not in copied  # the installer stays home
    assert state == {"purelib": str(site), "hook": True, "litellm": False}
    out = run(target, "import sys; print('litellm' in sys.modules, 'llm_log_exporter' in sys.modules)")
    assert out.stdout.split() == ["False", "False"]  # nothing heavy at start-up, our package not needed


def test_first_litellm_import_registers_the_callback(target: Path, tmp_path: Path) -> None:
    install(str(target))  # a venv directory works too
    log = tmp_path / "usage.jsonl"
    out = run(target, "import litellm; print([type(c).__name__ for c in litellm.callbacks])", LLM_USAGE_LOG=str(log))
    assert out.stdout.strip() == "['UsageLogger']", out.stderr
    out = run(target, CALL, LLM_USAGE_LOG=str(log), EXPECT_LINES="2")
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr
    events = sorted((json.loads(line) for line in log.read_text().splitlines()), key=lambda e: e["status"] != "success")
    assert [(e["status"], e["error_type"]) for e in events] == [("success", None), ("failure", "rate_limit")]
    assert events[0]["prompt_tokens"] > 0 and events[0]["cost_usd"] > 0
    assert "hello" not in log.read_text() and '"hi"' not in log.read_text()  # no prompt or response text


def test_importlib_import_module_as_aider_does(target: Path, tmp_path: Path) -> None:
    install(str(target))
    code = "import importlib; m = importlib.import_module('litellm'); print(len(m.callbacks))"
    assert run(target, code, LLM_USAGE_LOG=str(tmp_path / "u.jsonl")).stdout.strip() == "1"


def test_llm_usage_log_off_disables_it(target: Path, tmp_path: Path) -> None:
    install(str(target))
    out = run(target, "import litellm; print(len(litellm.callbacks))", LLM_USAGE_LOG="off")
    assert out.stdout.strip() == "0"


def test_a_broken_hook_never_breaks_the_host(target: Path, tmp_path: Path) -> None:
    site, _ = install(str(target))
    (site / HOOK_PACKAGE / "writer" / "callback.py").write_text("raise RuntimeError('broken callback')\n")
    log = tmp_path / "usage.jsonl"
    out = run(target, CALL, LLM_USAGE_LOG=str(log))
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr
    assert "broken callback" not in out.stderr and not log.exists()
    (site / HOOK_PACKAGE / "__init__.py").write_text("this is not python(\n")
    out = run(target, "print('fine')")
    assert (out.returncode, out.stdout, out.stderr) == (0, "fine\n", "")
    shutil.rmtree(site / HOOK_PACKAGE)  # half-removed: the .pth alone stays silent too
    out = run(target, "print('fine')")
    assert (out.returncode, out.stdout, out.stderr) == (0, "fine\n", "")


def test_unwritable_log_path_does_not_break_the_host(target: Path, tmp_path: Path) -> None:
    install(str(target))
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = run(target, CALL, LLM_USAGE_LOG=str(blocker / "usage.jsonl"))  # a path under a regular file
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr


def test_start_up_cost_is_small(target: Path) -> None:
    """Figures, not a gate: the hook only adds a finder, so start-up stays in the noise."""
    def best(n: int = 5) -> float:
        times = []
        for _ in range(n):
            started = time.perf_counter()
            run(target, "pass")
            times.append(time.perf_counter() - started)
        return min(times)

    before = best()
    install(str(target))
    after = best()
    print(f"interpreter start-up: {before * 1000:.1f} ms without the hook, {after * 1000:.1f} ms with it")
    assert after < before + 1.0  # generous: only catches an accidental early `import litellm` (seconds)


def test_uninstall_removes_everything(target: Path) -> None:
    site, _ = install(str(target))
    run(target, "pass")  # start-up imports the hook, leaving its bytecode in __pycache__
    _, removed = uninstall(str(target))
    assert {p.name for p in removed} >= {PTH_NAME, "__init__.py", "callback.py"}
    assert not any(HOOK_PACKAGE in str(p) for p in site.rglob("*"))
    out = run(target, "import sys, litellm; print(len(litellm.callbacks), 'llm_log_exporter_hook' in sys.modules)")
    assert out.stdout.split() == ["0", "False"]
    assert uninstall(str(target))[1] == []


def test_cli_commands(target: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["install-hook", "--python", str(target / "bin" / "python")])
    assert result.exit_code == 0, result.output
    assert "installed the LiteLLM hook" in result.output and "LLM_USAGE_LOG" in result.output
    result = runner.invoke(main, ["uninstall-hook", "--python", str(target)])
    assert result.exit_code == 0 and "removed the LiteLLM hook" in result.output
    result = runner.invoke(main, ["install-hook", "--python", str(target / "nope")])
    assert result.exit_code == 1 and "cannot run" in result.output


def test_reinstall_replaces_an_earlier_single_file_hook(target: Path, tmp_path: Path) -> None:
    """Hooks installed by earlier versions were three modules beside the .pth; they go, the package works."""
    site, _ = install(str(target))
    for module in LEGACY_MODULES:
        (site / f"{module}.py").write_text("raise RuntimeError('old hook')\n")
    install(str(target))
    assert not any((site / f"{module}.py").exists() for module in LEGACY_MODULES)
    out = run(target, "import litellm; print([type(c).__name__ for c in litellm.callbacks])",
              LLM_USAGE_LOG=str(tmp_path / "u.jsonl"))
    assert out.stdout.strip() == "['UsageLogger']", out.stderr


def test_install_hook_labels_option_sets_the_hooks_default(tmp_path: Path) -> None:
    from llm_log_exporter.writer.install import hook_sources

    assert "DEFAULT_LABELS = 'repo'" in hook_sources()["__init__.py"]
    assert "DEFAULT_LABELS = 'off'" in hook_sources("off")["__init__.py"]
    assert "DEFAULT_LABELS = 'repo,project'" in hook_sources("repo,project")["__init__.py"]
