"""Podman for the container tests: one engine setup, one base image, one image build per test session.

The tests give podman a store of their own (under the test cache; podman picks the storage driver, overlay
where it works) so they neither see nor disturb the machine's images, and scripts/podman/containers.conf
where no systemd runs (this project's CI machines: runc, cgroupfs, ulimits within the hard limit).

On a machine that can run them — root, with apt-get to install podman and debootstrap — a container
test that cannot run is a failure; elsewhere it is skipped with the reason.

The image is tagged by a digest of the Dockerfile and the build context, so ``python -m tests.containers
prepare`` can make the base image and build the image ahead of the tests (scripts/test.sh runs it in the
background, niced, while the other tests run); the session then finds it, or builds it itself. A lock
keeps the two from building at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.aider_env import cache_root
from tests.helpers import ROOT, free_port, http_get

SMOKE = ROOT / "scripts" / "container-smoke.sh"


def required_here() -> bool:
    """This kind of machine: root with Debian's apt, so podman, runc and debootstrap can be had."""
    return sys.platform.startswith("linux") and os.geteuid() == 0 and shutil.which("apt-get") is not None


def engine_env() -> dict[str, str]:
    """The environment scripts/container-smoke.sh, scripts/local-base-image.sh and ``podman`` run with."""
    env = dict(os.environ)
    runtime = Path("/run" if os.geteuid() == 0 else os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    env.setdefault("PODMAN_ROOT", str(cache_root() / "podman"))
    env.setdefault("PODMAN_RUNROOT", str(runtime / "llm-log-exporter-tests-podman"))
    if "CONTAINERS_CONF" not in env and not Path("/run/systemd/system").is_dir():
        env["CONTAINERS_CONF"] = str(ROOT / "scripts" / "podman" / "containers.conf")
    return env


def not_run(reason: str) -> None:
    """Exit 77 of the smoke script: a failure where the tests can run, a skip elsewhere."""
    if required_here():
        pytest.fail(f"container tests NOT RUN on a machine that can run them: {reason}")
    pytest.skip(reason)


@dataclass
class Engine:
    env: dict[str, str] = field(default_factory=engine_env)

    @property
    def argv(self) -> list[str]:
        out = ["podman"]
        for flag, key in (("--storage-driver", "PODMAN_STORAGE_DRIVER"), ("--root", "PODMAN_ROOT"),
                          ("--runroot", "PODMAN_RUNROOT")):
            if self.env.get(key):
                out += [flag, self.env[key]]
        return out

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self.argv, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}: {proc.stderr[-3000:]}")
        return proc

    def smoke(self, *args: str, timeout: float = 1800, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SMOKE), *args], env={**self.env, **env}, capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT)


# The way a pod runs every container of the examples: read-only root without podman's writable tmpfs,
# no capabilities, no privilege escalation. No healthcheck timers (they need systemd).
POD_LIKE = ["--read-only", "--read-only-tmpfs=false", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--no-healthcheck"]


@dataclass
class Image:
    tag: str
    engine: Engine

    def inspect(self) -> dict[str, object]:
        return json.loads(self.engine.run("image", "inspect", self.tag).stdout)[0]


class Container:
    """A detached container publishing port 9464 on a free loopback port; removed on exit."""

    def __init__(self, engine: Engine, image: str, run_args: Sequence[str], args: Sequence[str] = ()) -> None:
        self.engine = engine
        self.name = f"llm-log-exporter-test-{os.getpid()}-{time.monotonic_ns()}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        engine.run("run", "-d", "--name", self.name, "-p", f"127.0.0.1:{self.port}:9464", *run_args, image, *args)

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.engine.run("rm", "-f", "-t", "0", self.name, check=False)

    def logs(self) -> str:
        proc = self.engine.run("logs", self.name, check=False)
        return (proc.stdout + proc.stderr)[-4000:]

    def get(self, path: str) -> tuple[int, str]:
        try:
            return http_get(self.url + path, timeout=2.0)
        except OSError:
            return 0, ""

    def wait(self, predicate: object, timeout: float = 60.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():  # type: ignore[operator]
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; container log:\n{self.logs()}")


def build_image(engine: Engine, tag: str) -> Image:
    """The Dockerfile built by the smoke script (base image found, pulled or made locally)."""
    proc = engine.smoke("--build-only", TAG=tag, BUILD_OPTS="--layers=false")
    if proc.returncode == 77:
        not_run(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr[-4000:]
    return Image(proc.stdout.strip().splitlines()[-1], engine)


def context_digest() -> str:
    """Of what the build reads: the Dockerfile, the files .dockerignore lets into the context, and the
    commit it labels the image with (an image of the same files built at another commit says that one)."""
    from tests.test_container import build_context

    digest = hashlib.sha256((ROOT / "Dockerfile").read_bytes())
    revision = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    digest.update((revision.stdout.strip() if revision.returncode == 0 else "unknown").encode() + b"\0")
    with tempfile.TemporaryDirectory() as tmp:
        for rel in build_context(Path(tmp)):
            digest.update(rel.encode() + b"\0" + (Path(tmp) / rel).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def prepare_lock() -> Iterator[None]:
    path = cache_root() / "podman-prepare.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def session_image(engine: Engine) -> Image:
    """The image of this checkout: built ahead (``prepare``) or now; waits for a ``prepare`` under way."""
    tag = f"localhost/llm-log-exporter:test-{context_digest()}"
    with prepare_lock():
        if engine.run("image", "exists", tag, check=False).returncode == 0:
            return Image(tag, engine)
        return build_image(engine, tag)


def prune(engine: Engine, keep: str, days: float = 2.0) -> None:
    """Drop test images of other checkouts older than ``days`` (small: they share the base's layers)."""
    listed = engine.run("images", "--format", "{{.Repository}}:{{.Tag}} {{.CreatedAt}}",
                        "--filter", "reference=localhost/llm-log-exporter:test-*", check=False)
    for line in listed.stdout.splitlines():
        name, _, created = line.partition(" ")
        try:
            age = time.time() - time.mktime(time.strptime(created[:19], "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            continue
        if name != keep and age > days * 86400:
            engine.run("rmi", name, check=False)


def main(argv: Sequence[str]) -> int:
    """``python -m tests.containers prepare``: base image and image, made now; quiet where they cannot be."""
    if list(argv) != ["prepare"]:
        print("usage: python -m tests.containers prepare", file=sys.stderr)
        return 2
    started = time.monotonic()
    engine = Engine()
    try:
        image = session_image(engine)
    except (pytest.skip.Exception, pytest.fail.Exception) as why:
        print(f"container tests' image: not made ({why}, {time.monotonic() - started:.0f} s)")
        return 0
    prune(engine, image.tag)
    print(f"container tests' image: {image.tag} ready after {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
