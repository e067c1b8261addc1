"""The image built from the Dockerfile and run with podman, as the docs and the Kubernetes examples run it.

One build per session (``container_image`` in conftest.py, through scripts/container-smoke.sh; these tests
run last). Here: the smoke script's checks (read-only root without tmpfs, no capabilities, an arbitrary
UID, HEALTHCHECK, SIGTERM), the OCI labels, the writer and the exporter as two containers with the users,
groups, modes and volume of each Kubernetes example, and the aider ``docker run`` of docs/deploy.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llm_log_exporter import __version__
from tests.containers import POD_LIKE, Container, Image
from tests.helpers import FIXTURES, ROOT, parse_exposition, value
from tests.test_kubernetes import DEPLOY, EXAMPLES, _containers, _effective, _env, render

# The first test pays for the session's image build (and, on a fresh machine, the base image).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

SLO = FIXTURES / "litellm-1.81.10_slo.jsonl"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"


def test_smoke_script_passes(container_image: Image) -> None:
    proc = container_image.engine.smoke(IMAGE=container_image.tag, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert proc.stdout.startswith(f"OK: {container_image.tag} served the mounted log as 1000680000:0"), proc.stdout


def test_labels_and_healthcheck_survive_the_build(container_image: Image) -> None:
    data = container_image.inspect()
    config = data["Config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    revision = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    assert labels["org.opencontainers.image.revision"] == (revision.stdout.strip() if revision.returncode == 0
                                                           else "unknown")
    created = dt.datetime.strptime(labels["org.opencontainers.image.created"], "%Y-%m-%dT%H:%M:%SZ")
    # built from this commit (the image is cached per commit): not before it, not in the future
    committed = subprocess.run(["git", "log", "-1", "--format=%ct"], capture_output=True, text=True, cwd=ROOT)
    if committed.returncode == 0:
        assert created >= dt.datetime.utcfromtimestamp(int(committed.stdout)) - dt.timedelta(minutes=1)
    assert created <= dt.datetime.utcnow() + dt.timedelta(minutes=1)
    assert labels["org.opencontainers.image.title"] == "llm-log-exporter"
    assert {"org.opencontainers.image.source", "org.opencontainers.image.documentation"} <= set(labels)
    # podman's default OCI format would have dropped it; the smoke script builds with --format docker.
    health = data.get("Healthcheck") or config.get("Healthcheck")  # podman's JSON keeps it at the top
    assert health and health["Test"] == ["CMD", "llm-log-exporter", "healthcheck"]
    assert config["User"] == "65532:65532"


# ------------------------------------------------------------------ the two containers of a pod


WRITER = """
import json, sys
from llm_log_exporter.callback import UsageLogger
slo = json.loads(open("/fixtures/slo.jsonl").readline())
logger = UsageLogger()  # path, mode, rotation: from the environment, as the manifest sets it
for i in range(int(sys.argv[1])):
    logger.log_success_event({"standard_logging_object": dict(slo, id=f"call-{i}")}, None, None, None)
print(json.dumps({"lines": logger.lines_written, "errors": logger.errors}))
"""


def empty_dir_with_fs_group(path: Path, fs_group: int) -> Path:
    """The volume as the kubelet prepares an emptyDir for a pod with fsGroup: 0777, the group's, setgid."""
    path.mkdir()
    os.chown(path, -1, fs_group)
    path.chmod(0o2777)
    return path


def pod_of(example: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    objects = render(example)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    containers = _containers(deployment)
    exporter = next(c for c in containers if c["name"] == "llm-log-exporter")
    writer = next(c for c in containers if c is not exporter and any(
        m["name"] == "llm-usage" and not m.get("readOnly") for m in c.get("volumeMounts", [])))
    return deployment["spec"]["template"], exporter, writer, objects


def user_flags(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    uid, gid = _effective(pod, container, "runAsUser"), _effective(pod, container, "runAsGroup")
    assert uid is not None, f"{container['name']}: no runAsUser, it would run as its image's user"
    flags = ["--user", f"{uid}:{gid if gid is not None else 0}"]
    fs_group = pod["spec"].get("securityContext", {}).get("fsGroup")
    return [*flags, "--group-add", str(fs_group)] if fs_group is not None else flags


def config_mounts(exporter: dict[str, Any], pod: dict[str, Any], objects: list[dict[str, Any]],
                  where: Path) -> list[str]:
    """The exporter's ConfigMap volumes, rendered by kustomize, mounted where the manifest mounts them."""
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    flags = []
    for mount in exporter["volumeMounts"]:
        source = volumes[mount["name"]].get("configMap")
        if source is None:
            continue
        data = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == source["name"])["data"]
        directory = where / mount["name"]
        directory.mkdir()
        for name, text in data.items():
            (directory / name).write_text(text)
            (directory / name).chmod(0o644)
        directory.chmod(0o755)
        flags += ["-v", f"{directory}:{mount['mountPath']}:ro"]
    return flags


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_writer_and_exporter_containers_as_in_the_manifest(container_image: Image, example: Path,
                                                           tmp_path: Path) -> None:
    """The app (or proxy) container appends through the callback with the manifest's user, fsGroup, file
    mode and rotation; the exporter container reads the shared volume with its own user, read-only, and
    counts every line. Rotation is made frequent (16 KiB, 50 backups kept) so the rotated files and the
    lock file are created under the same rules."""
    pod, exporter, writer, objects = pod_of(example)
    fs_group = pod["spec"]["securityContext"]["fsGroup"]
    volume = empty_dir_with_fs_group(tmp_path / "llm-usage", fs_group)
    mount = next(m["mountPath"] for m in writer["volumeMounts"] if m["name"] == "llm-usage")
    exporter_env = [f"--env={k}={v}" for k, v in _env(exporter).items()]
    lines = 400
    with Container(container_image.engine, container_image.tag,
                   [*POD_LIKE, *user_flags(pod, exporter), "-v", f"{volume}:{mount}:ro",
                    *config_mounts(exporter, pod, objects, tmp_path), *exporter_env],
                   exporter.get("args", [])) as sidecar:
        sidecar.wait(lambda: sidecar.get("/readyz")[0] == 200, what="the exporter container ready")
        writer_env = {**_env(writer), "LLM_USAGE_LOG_MAX_BYTES": "16K", "LLM_USAGE_LOG_BACKUPS": "50"}
        proc = container_image.engine.run(
            "run", "--rm", *POD_LIKE, *user_flags(pod, writer), "-v", f"{volume}:{mount}",
            "-v", f"{SLO}:/fixtures/slo.jsonl:ro", *[f"--env={k}={v}" for k, v in writer_env.items()],
            "--entrypoint", "python", container_image.tag, "-c", WRITER, str(lines))
        assert json.loads(proc.stdout) == {"lines": lines, "errors": 0}
        box: dict[str, Any] = {}

        def counted() -> bool:
            code, text = sidecar.get("/metrics")
            box["samples"] = samples = parse_exposition(text) if code == 200 else {}
            return samples.get(("llm_requests_total", frozenset({
                ("model", "gpt-4o-mini"), ("provider", "openai"), ("status", "success"),
                ("tenant_id", "team-1")}))) == lines

        try:
            sidecar.wait(counted, what=f"{lines} requests counted")
        except AssertionError as err:  # say what was counted, and what each file held then
            shown = {(name, tuple(sorted(labels))): v for (name, labels), v in box["samples"].items()
                     if name in ("llm_requests_total", "llm_exporter_lines_total", "llm_exporter_rotations_total")}
            held = {p.name: p.read_bytes().count(b"\n") for p in sorted(volume.iterdir()) if p.is_file()}
            raise AssertionError(f"counted {shown}; lines per file {held}; {err}") from None
        assert value(box["samples"], "llm_exporter_lines_total", result="parsed") == lines
    files = sorted(volume.iterdir())
    names = [p.name for p in files]
    assert "usage.jsonl" in names and "usage.jsonl.1" in names and ".usage.jsonl.lock" in names, names
    uid = _effective(pod, writer, "runAsUser")
    mode = int(_env(writer)["LLM_USAGE_LOG_MODE"], 8)
    for path in files:  # the writer's, the pod's group (setgid volume), exactly the manifest's mode
        st = path.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, fs_group, mode), path


def test_private_files_are_what_breaks_the_proxy_example(container_image: Image, tmp_path: Path) -> None:
    """Control: with the callback's default 0600 the exporter of the LiteLLM proxy example reads nothing."""
    pod, exporter, writer, _ = pod_of(DEPLOY / "litellm-proxy")
    volume = empty_dir_with_fs_group(tmp_path / "llm-usage", pod["spec"]["securityContext"]["fsGroup"])
    writer_env = {**_env(writer), "LLM_USAGE_LOG_MODE": "0600"}
    container_image.engine.run(
        "run", "--rm", *POD_LIKE, *user_flags(pod, writer), "-v", f"{volume}:/var/log/llm",
        "-v", f"{SLO}:/fixtures/slo.jsonl:ro", *[f"--env={k}={v}" for k, v in writer_env.items()],
        "--entrypoint", "python", container_image.tag, "-c", WRITER, "3")
    with Container(container_image.engine, container_image.tag,
                   [*POD_LIKE, *user_flags(pod, exporter), "-v", f"{volume}:/var/log/llm:ro",
                    *[f"--env={k}={v}" for k, v in _env(exporter).items()]]) as sidecar:
        sidecar.wait(lambda: "llm_exporter_open_errors_total{" in sidecar.get("/metrics")[1],
                     what="the open error counted")
        samples = parse_exposition(sidecar.get("/metrics")[1])
        assert not [k for k in samples if k[0] == "llm_requests_total"]
        assert "Permission denied" in sidecar.logs()


# ------------------------------------------------------------------ the aider docker run of the docs


def doc_block(test_name: str) -> list[str]:
    """The shell block of docs/deploy.md marked ``# tested: ...::<test_name>``: its commands, one per line."""
    for block in re.findall(r"```sh\n(.*?)```", DEPLOY_DOC.read_text(), re.S):
        if block.startswith("# tested: ") and block.splitlines()[0].endswith(f"::{test_name}"):
            joined = block.replace("\\\n", " ")
            return [line for line in joined.splitlines() if line.strip() and not line.startswith("#")]
    raise AssertionError(f"docs/deploy.md has no sh block marked as run by {test_name}")


@pytest.mark.parametrize("documented_mode", [True, False], ids=["as-documented", "without-the-mode"])
def test_aider_docker_run_of_the_docs(container_image: Image, tmp_path: Path, documented_mode: bool) -> None:
    """aider (here: the callback in a process of this user, as the hook runs it) writes ~/.aider/usage.jsonl;
    the documented `podman run` follows it as UID 65532 and the documented `curl` shows every call. Without
    the documented LLM_USAGE_LOG_MODE the exporter gets Permission denied: the failure this setting fixes."""
    commands = doc_block("test_aider_docker_run_of_the_docs")
    exports = dict(c.removeprefix("export ").split("=", 1) for c in commands if c.startswith("export "))
    run = shlex.split(next(c for c in commands if c.startswith("podman run ")))
    curl = next(c for c in commands if c.startswith("curl "))
    assert exports == {"LLM_USAGE_LOG_MODE": "0644"} and len(commands) == len(exports) + 2, commands
    home = tmp_path / "home"
    (home / ".aider").mkdir(parents=True)
    (home / ".aider").chmod(0o755)  # as aider leaves it (its caches live there), with the usual umask 022
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_USAGE_LOG")}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), LLM_USAGE_LOG=str(home / ".aider" / "usage.jsonl"))
    if documented_mode:
        env.update(exports)
    writer = WRITER.replace("/fixtures/slo.jsonl", str(SLO))
    done = subprocess.run([sys.executable, "-c", writer, "5"], env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(done.stdout) == {"lines": 5, "errors": 0}, done.stderr
    # podman run -d --name NAME -p 9464:9464 -v ... IMAGE: the container helper names it and picks the port.
    assert run[:3] == ["podman", "run", "-d"] and run[-1] == "llm-log-exporter", run
    options = run[3:-1]
    assert options[options.index("-p") + 1] == "9464:9464" and "--name" in options
    for flag in ("--name", "-p"):
        i = options.index(flag)
        del options[i:i + 2]
    options = [o.replace("$HOME", str(home)) for o in options]
    with Container(container_image.engine, container_image.tag, ["--no-healthcheck", *options]) as exporter:
        exporter.wait(lambda: exporter.get("/readyz")[0] == 200, what="ready")
        if documented_mode:
            exporter.wait(lambda: "llm_requests_total{" in exporter.get("/metrics")[1], what="requests")
            shown = subprocess.run(["bash", "-c", curl.replace("localhost:9464", f"127.0.0.1:{exporter.port}")],
                                   capture_output=True, text=True, timeout=60)
            assert sum(float(line.rsplit(" ", 1)[1]) for line in shown.stdout.splitlines()) == 5, shown
        else:
            exporter.wait(lambda: "llm_exporter_open_errors_total{" in exporter.get("/metrics")[1],
                          what="the open error counted")
            assert "Permission denied" in exporter.logs()
            assert "llm_requests_total{" not in exporter.get("/metrics")[1]


# ------------------------------------------------------------------ NOT RUN: a failure here, a skip elsewhere


def test_not_run_fails_where_containers_can_run_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import containers

    required_here = containers.required_here
    proc = containers.Engine().smoke(ENGINE="no-such-container-engine", timeout=60)
    assert proc.returncode == 77 and "NOT RUN: no container engine" in proc.stderr, proc.stderr
    reason = proc.stderr.strip().splitlines()[-1]
    monkeypatch.setattr(containers, "required_here", lambda: True)
    with pytest.raises(pytest.fail.Exception, match="NOT RUN on a machine that can run them"):
        containers.not_run(reason)
    monkeypatch.setattr(containers, "required_here", lambda: False)
    with pytest.raises(pytest.skip.Exception, match="no container engine"):
        containers.not_run(reason)
    monkeypatch.setattr(containers.os, "geteuid", lambda: 1000)
    assert not required_here()  # not root: podman, debootstrap cannot be had
    monkeypatch.setattr(containers.os, "geteuid", lambda: 0)
    monkeypatch.setattr(containers.shutil, "which", lambda name: None)
    assert not required_here()  # no apt-get
