"""A real Prometheus server (Debian package ``prometheus``) for integration tests.

One server per test session (fixture ``prometheus`` in conftest.py); tests point it at their
exporters with ``scrape(...)``, which rewrites the config and reloads it through the lifecycle API.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.helpers import free_port, http_get

BINARY = shutil.which("prometheus")


class PrometheusServer:
    def __init__(self, workdir: Path, *, data_dir: Path | None = None, extra_args: Sequence[str] = ()) -> None:
        if BINARY is None:
            raise RuntimeError("the prometheus binary is missing: install the Debian package 'prometheus'")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "prometheus.yml"
        self.data_dir = data_dir or workdir / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.write_config([])
        self.log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                BINARY,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=100y",
                *extra_args,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {(self.workdir / 'prometheus.log').read_text()[-2000:]}")
            try:
                if http_get(self.url + "/-/ready", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError("prometheus never became ready")

    def write_config(self, scrape_configs: list[dict[str, Any]], interval: str = "1s") -> None:
        # JSON is valid YAML: no YAML library needed to write the config.
        config = {"global": {"scrape_interval": interval, "evaluation_interval": interval},
                  "scrape_configs": scrape_configs}
        self.config.write_text(json.dumps(config, indent=2))

    def reload(self, scrape_configs: list[dict[str, Any]], rule_files: Sequence[str] = ()) -> None:
        self.write_config(scrape_configs)
        if rule_files:
            config = json.loads(self.config.read_text())
            config["rule_files"] = list(rule_files)
            self.config.write_text(json.dumps(config, indent=2))
        request = urllib.request.Request(self.url + "/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def scrape(self, job: str, targets: Sequence[str], **extra: Any) -> None:
        """Scrape only these targets (plain HTTP unless ``extra`` says otherwise), 1 s interval."""
        self.reload([{"job_name": job, "static_configs": [{"targets": list(targets)}], **extra}])

    def api(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        code, body = http_get(f"{self.url}/api/v1/{path}?{query}", timeout=10)
        data = json.loads(body)
        if code != 200 or data.get("status") != "success":
            raise AssertionError(f"prometheus API {path} {params}: {code} {body[:500]}")
        return data["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        return self.api("query", query=expr, time=at)["result"]

    def scalar(self, expr: str, at: float | None = None) -> float:
        result = self.query(expr, at)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])

    def wait_targets_up(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        active: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            active = self.api("targets", state="active")["activeTargets"]
            if len(active) == count and all(t["health"] == "up" for t in active):
                return active
            time.sleep(0.2)
        raise AssertionError(f"targets not up: {active}")

    def wait_query(self, expr: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until ``expr`` returns data (at least one series)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result:
                return result
            time.sleep(0.3)
        raise AssertionError(f"no data for {expr}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
