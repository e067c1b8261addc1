"""Shared test helpers: run the exporter (in-process or as a real subprocess) and read its metrics."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Share of each property test's examples to run: 1 by default; .ci/run's Python-version runs take fewer
# (the full count runs once, in its main run).
EXAMPLES_SHARE = float(os.environ.get("LLM_LOG_EXPORTER_TEST_EXAMPLES", "1"))


def examples(n: int) -> int:
    """``n`` hypothesis examples, scaled by ``LLM_LOG_EXPORTER_TEST_EXAMPLES`` (never fewer than 10)."""
    return max(10, round(n * EXAMPLES_SHARE))

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_exposition(text: str) -> Samples:
    """Exposition text → {(sample name, frozenset(labels)): value}."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """Sum of every sample called ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and want <= ls]
    if not found:
        raise KeyError(f"no sample {name}{labels}")
    return sum(found)


def metrics_for_files(paths: Iterable[str | os.PathLike], **config: object) -> Samples:
    """Read the files once through the real tailer, parser and collector, in-process."""
    from llm_log_exporter.daemon import Config, Exporter

    exporter = Exporter(Config(files=[str(p) for p in paths], poll=True, **config))  # type: ignore[arg-type]
    try:
        exporter.tailer.poll_once()
        exporter.settle_calls()  # as the daemon does after its initial read
        exporter.store.ready.set()
        return parse_exposition(generate_latest(exporter.registry).decode())
    finally:
        exporter.tailer.close()


def event_line(kind: str = "request", **fields: object) -> str:
    """One schema-v1 line, newline included: ``{"v": 1, "event": kind, **fields}``."""
    return json.dumps({"v": 1, "event": kind, **fields}) + "\n"


def request_line(model: str = "m", tokens: int = 1, **extra: object) -> bytes:
    """A request line of provider ``p`` with ``tokens`` input tokens, as bytes to append."""
    return event_line(model=model, provider="p", prompt_tokens=tokens, **extra).encode()


def append(path: Path | str, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def environment_site_dirs() -> list[str]:
    """The site-packages directories the running tests import from (a virtualenv's or the system's)."""
    return [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages") and os.path.isdir(p)]


def make_venv(venv: Path, *, with_pip: bool = False) -> Path:
    """A fresh virtualenv that also sees the packages of the environment the tests run in.

    ``python -m venv --system-site-packages`` run from inside a virtualenv links the *base* interpreter's
    site-packages, not the virtualenv's, so the new venv would miss what the test command installed. A
    ``.pth`` file listing the test environment's site-packages works from either; being a plain path list
    it processes no ``.pth`` file there, so an editable install of this package stays invisible.
    """
    args = [sys.executable, "-m", "venv", str(venv)]
    if not with_pip:
        args.insert(3, "--without-pip")
    subprocess.run(args, check=True, timeout=300)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "_test_environment.pth").write_text("".join(f"{d}\n" for d in environment_site_dirs()), encoding="utf-8")
    return venv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


class ExporterProcess:
    """The real daemon as a subprocess on 127.0.0.1; stopped with SIGTERM on exit."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None,
                 preexec_fn: Callable[[], None] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llm_log_exporter", "--host", "127.0.0.1", "--port", str(self.port), *args],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=preexec_fn,  # e.g. resource limits or another user for the daemon alone
        )
        self.stderr = ""

    def __enter__(self) -> ExporterProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.wait_until(lambda: self.get("/readyz")[0] == 200, timeout, "readyz never answered 200")

    def get(self, path: str) -> tuple[int, str]:
        if self.proc.poll() is not None:
            raise AssertionError(f"exporter exited with {self.proc.returncode}: {self.proc.stderr.read()}")
        try:
            return http_get(self.url + path, timeout=2.0)
        except OSError:
            return 0, ""

    def scrape(self) -> Samples:
        code, text = self.get("/metrics")
        assert code == 200, code
        return parse_exposition(text)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        # Polls back off to a hundredth of the timeout (at most 1 s), so a long wait on a busy machine does
        # not spend the daemon's CPU on scrapes it cannot yet answer.
        delay, longest = 0.05, min(max(0.05, timeout / 100), 1.0)
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except KeyError:
                pass
            time.sleep(delay)
            delay = min(delay * 1.5, longest)
        raise AssertionError(f"timed out waiting for {what}")

    def wait_value(self, name: str, expected: float, timeout: float = 10.0, **labels: str) -> Samples:
        box: dict[str, Samples] = {}

        def check() -> bool:
            box["s"] = self.scrape()
            return value(box["s"], name, **labels) == expected

        try:
            self.wait_until(check, timeout, f"{name}{labels} == {expected}")
        except AssertionError:
            got = box.get("s")
            raise AssertionError(
                f"{name}{labels}: expected {expected}, last saw {value(got, name, **labels) if got else None}"
            ) from None
        return box["s"]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr = self.proc.stderr.read() if self.proc.stderr else ""
        return self.proc.returncode
