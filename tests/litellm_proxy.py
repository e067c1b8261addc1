"""A real LiteLLM proxy (``litellm[proxy]==1.81.10``, installed by the test extra) wired as the project ships it.

The config and callback are ``deploy/kubernetes/litellm-proxy/litellm-config.yaml`` and ``custom_callbacks.py``,
copied unchanged into a work directory; the copy of the config only adds a second logger
(``tests/litellm_payload_dump.py``, LiteLLM's payload as its bucket loggers write it) to the callbacks. What
the example takes from its environment (``OPENAI_API_KEY``, ``LITELLM_MASTER_KEY``, ``LLM_USAGE_LOG``) is set
here, and ``OPENAI_API_BASE`` points the deployments at a loopback upstream. ``LITELLM_LOCAL_MODEL_COST_MAP``
and ``LITELLM_TELEMETRY=False`` keep start-up offline. Router settings stay LiteLLM's defaults (2 retries).

With ``--num_workers 2`` uvicorn may kill and restart a worker while starting; the proxy is up when
``/health/readiness`` answers and the log holds one "Application startup complete." per worker.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.helpers import ROOT, free_port, http_get

EXAMPLE = ROOT / "deploy" / "kubernetes" / "litellm-proxy"
DUMPER = Path(__file__).resolve().parent / "litellm_payload_dump.py"
MASTER_KEY = "sk-llm-log-exporter-test"
STARTED = "Application startup complete."
# The ``litellm`` command, started as ``python -c``: uvicorn starts its workers with multiprocessing's spawn,
# which re-imports a ``__main__`` *file* (the console script, or ``-m litellm.proxy.proxy_cli``) — all of
# litellm — in each worker before the worker answers the supervisor's 5-second ping, so on a busy machine
# the supervisor kills and restarts workers without end. A ``-c`` main is not re-imported.
LAUNCH = "from litellm.proxy.proxy_cli import run_server; run_server()"


class LiteLLMProxy:
    def __init__(self, workdir: Path, upstream: str, usage_log: Path, payload_log: Path, workers: int = 2) -> None:
        self.workdir = workdir
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "proxy.log"
        workdir.mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLE / "custom_callbacks.py", workdir / "custom_callbacks.py")
        shutil.copy(DUMPER, workdir / "litellm_payload_dump.py")
        config = yaml.safe_load((EXAMPLE / "litellm-config.yaml").read_text())
        settings = config.setdefault("litellm_settings", {})
        shipped = settings["callbacks"]
        settings["callbacks"] = [*(shipped if isinstance(shipped, list) else [shipped]),
                                 "litellm_payload_dump.payload_dump"]
        self.config = workdir / "litellm-config.yaml"
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))
        self.model_names = [entry["model_name"] for entry in config["model_list"]]
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "OPENAI_API_KEY": "sk-upstream",
            "OPENAI_API_BASE": upstream,
            "LITELLM_MASTER_KEY": MASTER_KEY,
            "LLM_USAGE_LOG": str(usage_log),
            "LITELLM_PAYLOAD_LOG": str(payload_log),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
            "LITELLM_LOG": "ERROR",
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0

    def start(self, timeout: float = 180.0) -> LiteLLMProxy:
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCH, "--config", str(self.config), "--host", "127.0.0.1",
                 "--port", str(self.port), "--num_workers", str(self.workers)],
                cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the LiteLLM proxy exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            if self.log().count(STARTED) >= self.workers and self._ready():
                self.startup_seconds = time.monotonic() - started
                return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"the LiteLLM proxy was not up after {timeout:.0f} s:\n{self.log()[-4000:]}")

    def _ready(self) -> bool:
        try:
            return http_get(self.url + "/health/readiness", timeout=2.0)[0] == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # the proxy and its uvicorn workers: the group this test started
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
