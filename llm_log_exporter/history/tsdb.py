"""``replay --tsdb DATA_DIR``: Prometheus TSDB blocks in one command, through ``promtool``.

promtool 2.x (``tsdb create-blocks-from openmetrics``) reads its whole input once per block it
writes, so one file of three months in 2 h blocks costs a thousand passes. The backfill is therefore
written as one OpenMetrics file per block-aligned window (``backfill.OpenMetricsWriter`` with a
window), and each window goes to its own promtool as soon as it is complete, up to ``jobs`` at a time
beside the replay; a window file is deleted once its block is written, so the spool holds a few
windows, never the whole backfill. Windows are 2 h, or longer (6 h, 18 h, 54 h: the block ranges
Prometheus compacts to, written by promtool's ``--max-block-duration``) when a window's text stays
small (``estimate.window_for``): fewer promtool runs, fewer and larger blocks, the same samples.

Blocks are made in a staging directory inside DATA_DIR (``.llm-replay-*``, which Prometheus ignores)
and moved into DATA_DIR only when every window succeeded: an interrupted or failed replay leaves
DATA_DIR as it was. promtool's own scratch files go to the spool too (its ``TMPDIR``), so stopping the
replay removes everything it made.

promtool is ~90 % of a ``--tsdb`` backfill's CPU, and Go's collector a good part of promtool's: it runs
with ``GOGC=400`` unless the environment sets ``GOGC`` (on an 18 h window of 1.9 M samples, promtool
2.42 took 10-15 % less CPU for 90-180 MB more memory, ~0.45-0.52 GB in all).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

from llm_log_exporter.history.backfill import BLOCK_RANGES, BLOCK_SECONDS, WindowSink

PROMTOOL_GOGC = "400"  # Go's GC target for promtool, unless the environment sets GOGC


class TsdbError(RuntimeError):
    """promtool is missing, or failed on a window."""


def find_promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        raise TsdbError("promtool was not found on PATH; it comes with Prometheus (Debian/Ubuntu: "
                        "apt-get install prometheus; or the promtool binary of a Prometheus release). "
                        "Without it, write OpenMetrics with -o FILE and run promtool elsewhere.")
    return path


@dataclass
class _Job:
    process: subprocess.Popen
    window: str
    log: str
    start: int


@dataclass
class TsdbStats:
    windows: int = 0
    window: int = BLOCK_SECONDS
    blocks: list[str] = field(default_factory=list)


class TsdbBuilder(WindowSink):
    """Takes complete windows (``WindowSink``), runs promtool on each, and publishes the blocks on ``finish``."""

    def __init__(self, data_dir: str, jobs: int = 2, spool_dir: str | None = None, promtool: str | None = None,
                 window: int = BLOCK_SECONDS) -> None:
        if window not in BLOCK_RANGES:
            raise ValueError(f"a window is one of promtool's block ranges {BLOCK_RANGES}, not {window}")
        self.promtool = promtool or find_promtool()
        self.window = window
        # promtool aligns blocks of --max-block-duration to multiples of it, as the windows are
        self.block_flag = [f"--max-block-duration={window // 3600}h"] if window > BLOCK_SECONDS else []
        self.data_dir = data_dir
        self.jobs = max(1, jobs)
        os.makedirs(data_dir, exist_ok=True)
        self.staging = tempfile.mkdtemp(prefix=".llm-replay-", dir=data_dir)
        self.spool = tempfile.mkdtemp(prefix="llm-replay-windows-", dir=spool_dir)
        self.scratch = os.path.join(self.spool, "promtool-tmp")
        os.mkdir(self.scratch)
        self.env = {"GOGC": PROMTOOL_GOGC, **os.environ, "TMPDIR": self.scratch}
        self.running: list[_Job] = []
        self.stats = TsdbStats(window=window)

    # --- WindowSink ----------------------------------------------------------------------------

    def path(self, start: int) -> str:
        return os.path.join(self.spool, f"window-{start}.om")

    def done(self, path: str, start: int, end: int) -> None:
        while len(self.running) >= self.jobs:
            self._reap(self.running[0])
        log = path + ".log"
        with open(log, "wb") as err:
            process = subprocess.Popen(
                [self.promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", *self.block_flag, path,
                 self.staging],
                stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT, env=self.env,
            )
        self.running.append(_Job(process, path, log, start))
        self.stats.windows += 1

    # --- jobs --------------------------------------------------------------------------------

    def _reap(self, job: _Job) -> None:
        code = job.process.wait()
        self.running.remove(job)
        if code != 0:
            with open(job.log, "rb") as f:
                detail = f.read()[-2000:].decode(errors="replace").strip()
            raise TsdbError(f"promtool failed (exit {code}) on the window starting {job.start} ({job.window}): "
                            f"{detail}")
        os.unlink(job.window)
        os.unlink(job.log)

    def finish(self) -> TsdbStats:
        """Wait for every window, then move the blocks into DATA_DIR; nothing moves if one failed."""
        try:
            while self.running:
                self._reap(self.running[0])
            for name in sorted(os.listdir(self.staging)):
                source = os.path.join(self.staging, name)
                if os.path.isdir(source) and not name.startswith("."):
                    os.rename(source, os.path.join(self.data_dir, name))
                    self.stats.blocks.append(name)
        finally:
            self.abort()
        return self.stats

    def abort(self) -> None:
        """Stop promtool and remove the staging and spool directories (idempotent)."""
        for job in self.running:
            with contextlib.suppress(OSError):
                job.process.kill()
            job.process.wait()
        self.running = []
        shutil.rmtree(self.staging, ignore_errors=True)
        shutil.rmtree(self.spool, ignore_errors=True)
