"""The callback in a hostile environment: shared directories, planted links, and secrets in prompts."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llm_log_exporter.callback import UsageLogger
from tests.helpers import ROOT, ExporterProcess

EVENT = {"v": 1, "event": "request", "model": "m", "provider": "p", "prompt_tokens": 1}
NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make files owned by another user")


@pytest.fixture
def public(tmp_path: Path) -> Path:
    """A /tmp-like directory: world-writable with the sticky bit."""
    d = tmp_path / "public"
    d.mkdir()
    d.chmod(0o1777)
    return d


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    target = private / ".bashrc"
    target.write_text("echo hello\n")
    return target


def write_one(path: Path) -> UsageLogger:
    logger = UsageLogger(path)
    logger.write_event(EVENT)  # never raises: errors are counted and logged
    logger.close()
    return logger


def test_new_file_is_0600_and_new_directories_0700(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        logger = write_one(tmp_path / "a" / "b" / "usage.jsonl")
    finally:
        os.umask(old)
    assert logger.errors == 0 and logger.lines_written == 1
    assert stat.S_IMODE((tmp_path / "a" / "b" / "usage.jsonl").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700


def test_planted_symlink_in_world_writable_dir_is_refused(
    public: Path, victim: Path, caplog: pytest.LogCaptureFixture
) -> None:
    link = public / "usage.jsonl"
    link.symlink_to(victim)
    with caplog.at_level(logging.WARNING, logger="llm_log_exporter.callback"):
        logger = write_one(link)
    assert victim.read_text() == "echo hello\n"
    assert logger.errors == 1 and logger.lines_written == 0
    assert "refusing to follow a symlink" in caplog.text and str(link) in caplog.text


def test_dangling_planted_symlink_creates_nothing(public: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    (public / "usage.jsonl").symlink_to(target)
    logger = write_one(public / "usage.jsonl")
    assert logger.errors == 1 and not target.exists()


def test_symlink_swapped_in_after_rotation_is_refused(public: Path, victim: Path) -> None:
    path = public / "usage.jsonl"
    logger = UsageLogger(path)
    logger.write_event(EVENT)
    path.unlink()  # rotated away; someone else is quicker than our next write
    path.symlink_to(victim)
    logger.write_event(EVENT)
    logger.close()
    assert victim.read_text() == "echo hello\n"
    assert logger.lines_written == 1 and logger.errors == 1


def test_hard_link_in_world_writable_dir_is_refused(public: Path, victim: Path) -> None:
    os.link(victim, public / "usage.jsonl")
    logger = write_one(public / "usage.jsonl")
    assert victim.read_text() == "echo hello\n" and logger.errors == 1


def test_symlink_outside_shared_dirs_is_followed(tmp_path: Path) -> None:
    """In a directory only its owner can write, a symlink is the owner's choice (logrotate setups)."""
    private = tmp_path / "private"
    private.mkdir(mode=0o755)
    real = tmp_path / "real.jsonl"
    (private / "usage.jsonl").symlink_to(real)
    logger = write_one(private / "usage.jsonl")
    assert logger.errors == 0 and json.loads(real.read_text())["model"] == "m"


def test_own_file_in_world_writable_dir_is_used(public: Path) -> None:
    for _ in range(2):
        logger = write_one(public / "usage.jsonl")
        assert logger.errors == 0
    assert len((public / "usage.jsonl").read_text().splitlines()) == 2


@as_root
def test_file_planted_by_another_user_is_refused(public: Path) -> None:
    planted = public / "usage.jsonl"
    planted.write_text("")
    planted.chmod(0o666)
    os.chown(planted, NOBODY, NOBODY)
    logger = write_one(planted)
    assert logger.errors == 1 and planted.read_text() == ""


@as_root
def test_foreign_directory_symlink_in_world_writable_dir_is_refused(public: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = public / "logs"
    link.symlink_to(elsewhere, target_is_directory=True)
    os.lchown(link, NOBODY, NOBODY)
    logger = write_one(link / "usage.jsonl")
    assert logger.errors == 1 and not (elsewhere / "usage.jsonl").exists()
    os.lchown(link, 0, 0)  # the same link owned by us (root) is fine
    assert write_one(link / "usage.jsonl").errors == 0


# ------------------------------------------------------------------------------------------
# Secrets in prompts and answers never reach a file
# ------------------------------------------------------------------------------------------

SECRET = "pr0mpt-S3CRET-4b1d9e"
ANSWER = "answ3r-S3CRET-77c0aa"

_SCRIPT = textwrap.dedent(
    f"""
    import asyncio, json, os, time, litellm
    from llm_log_exporter.callback import UsageLogger, log_failure, log_success
    logger = UsageLogger(os.environ["LLM_USAGE_LOG"])
    litellm.callbacks = [logger]
    def requests():
        try:
            with open(os.environ["LLM_USAGE_LOG"]) as f:
                return sum(json.loads(line)["event"] == "request" for line in f)
        except FileNotFoundError:
            return 0
    messages = [{{"role": "system", "content": "keep {SECRET} safe"}}, {{"role": "user", "content": "{SECRET}"}}]
    kw = dict(model="gpt-4o-mini", messages=messages, metadata={{"tenant_id": "acme"}})
    litellm.completion(mock_response="{ANSWER}", **kw)
    for _ in litellm.completion(mock_response="{ANSWER} streamed", stream=True, **kw):
        pass
    try:
        litellm.completion(mock_response=Exception("{SECRET} {ANSWER} in an error"), **kw)
    except Exception:
        pass
    try:
        litellm.completion(mock_response="litellm.RateLimitError", **kw)
    except Exception:
        pass
    async def main():
        await litellm.acompletion(mock_response="{ANSWER}", **kw)
        async for _ in await litellm.acompletion(mock_response="{ANSWER}", stream=True, **kw):
            pass
        # litellm logs async calls from tasks on this loop (sync ones on a worker thread): keep the loop
        # running until the six calls' lines are written; asyncio.run would cancel a task not run yet
        deadline = time.monotonic() + 60
        while requests() < 6 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    asyncio.run(main())
    time.sleep(0.2)  # anything written late (a seventh line would fail the count)
    print("lines", logger.lines_written, "errors", logger.errors)
    """
)


@pytest.mark.slow
def test_secret_in_prompt_reaches_no_file(tmp_path: Path) -> None:
    pytest.importorskip("litellm")
    sandbox = tmp_path / "sandbox"
    home, tmp, cwd = sandbox / "home", sandbox / "tmp", sandbox / "cwd"
    for d in (home, tmp, cwd):
        d.mkdir(parents=True)
    log = home / ".aider" / "usage.jsonl"
    env = {
        **os.environ, "HOME": str(home), "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT), "LLM_USAGE_LOG": str(log),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "errors 0" in proc.stdout, proc.stdout
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    requests = [line for line in lines if line["event"] == "request"]
    assert len(requests) == 6, lines  # the test is not vacuous: every call was logged
    assert {line["status"] for line in requests} == {"success", "failure"}
    written = [p for p in sandbox.rglob("*") if p.is_file()]
    assert log in written
    for path in written:
        data = path.read_bytes()
        assert SECRET.encode() not in data and ANSWER.encode() not in data, path

    # The exporter reading that file keeps no text either: not in /metrics, not in its log.
    with ExporterProcess(["--file", str(log)]) as exp:
        exp.wait_ready()
        status, body = exp.get("/metrics")
        assert status == 200 and 'tenant_id="acme"' in body
    assert SECRET not in body and ANSWER not in body
    assert SECRET not in exp.stderr and ANSWER not in exp.stderr
