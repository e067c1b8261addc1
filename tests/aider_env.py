"""Real aider for the end-to-end tests: its own venv (cached across runs), run non-interactively.

The venv lives under ``$LLM_LOG_EXPORTER_TEST_CACHE`` (default ``~/.cache/llm-log-exporter-tests``),
keyed by aider's version, so a second test run on the same machine reuses it; on a fresh machine it
is created with pip (about 40 s from PyPI here). Each run gets its own HOME with aider's model-price
cache pre-seeded from the venv's litellm, so neither aider nor litellm touches the network.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

AIDER_VERSION = "0.86.2"


def cache_root() -> Path:
    root = os.environ.get("LLM_LOG_EXPORTER_TEST_CACHE") or os.path.expanduser("~/.cache/llm-log-exporter-tests")
    return Path(root)


def aider_venv() -> Path:
    """The venv holding aider-chat==AIDER_VERSION; created once (under a lock) and reused."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"aider-chat-{AIDER_VERSION}"
    marker = venv / ".complete"
    with open(root / f"aider-chat-{AIDER_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            shutil.rmtree(venv, ignore_errors=True)
            started = time.monotonic()
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                                  "--disable-pip-version-check", f"aider-chat=={AIDER_VERSION}"],
                                 capture_output=True, text=True)
            if pip.returncode:
                raise RuntimeError(f"pip install aider-chat=={AIDER_VERSION} failed:\n{pip.stderr[-4000:]}")
            marker.write_text(f"installed in {time.monotonic() - started:.0f} s\n")
    return venv


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


@dataclass
class AiderRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def make_home(home: Path, venv: Path) -> Path:
    """A HOME whose aider model-price cache is fresh, so aider does not try to download it."""
    caches = home / ".aider" / "caches"
    caches.mkdir(parents=True, exist_ok=True)
    bundled = site_packages(venv) / "litellm" / "model_prices_and_context_window_backup.json"
    shutil.copy(bundled, caches / "model_prices_and_context_window.json")
    return home


def run_aider(venv: Path, home: Path, workdir: Path, api_base: str, analytics_log: Path, usage_log: Path,
              model: str = "openai/gpt-4o-mini", message: str = "say hi", extra: tuple[str, ...] = ()) -> AiderRun:
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TERM": "dumb",
        "OPENAI_API_KEY": "dummy",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LLM_USAGE_LOG": str(usage_log),
    }
    args = [str(venv / "bin" / "aider"), "--model", model, "--openai-api-base", api_base, "--message", message,
            "--yes-always", "--no-git", "--no-analytics", "--analytics-log", str(analytics_log),
            "--no-check-update", "--no-show-model-warnings", "--no-pretty", "--no-fancy-input",
            "--map-tokens", "0", *extra]
    started = time.monotonic()
    proc = subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)
    return AiderRun(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
