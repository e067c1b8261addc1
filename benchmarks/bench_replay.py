"""Replay / catch-up throughput: the exporter's full read path against the bare limits.

    python benchmarks/bench_replay.py [-n 1000000] [--runs 3]

Prints lines/s for: reading lines, reading + orjson.loads (the parse limit), and the exporter's
real path (tailer → native parser → metrics, as the daemon runs its initial read), medians of runs.
Then ``llm-log-exporter replay`` (the backfill: same parser and aggregation, in event-time order,
plus one snapshot of every series per --step written as OpenMetrics) for each ``--replay-steps``,
with the samples it wrote; its cost grows with steps × series, so both are shown.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate
from bench_runner import bare_orjson, bare_read, exporter_read

from llm_log_exporter.daemon import Config, replay_history
from llm_log_exporter.history.replay import ReplayOptions
from llm_log_exporter.history.sources import expand


class CountingSink:
    """Where the backfill goes: counts bytes, keeps nothing (disk speed is not what we measure;
    spilled runs still go to TMPDIR, as in real use)."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.bytes += len(data)
        return len(data)


def replay_backfill(path: str, step: int) -> tuple[int, int, int]:
    sink = CountingSink()
    result = replay_history(Config(files=[], format="native"), expand([path]), sink, ReplayOptions(step=step),  # type: ignore[arg-type]
                    now=time.time())
    return result.lines, result.writer.samples, sink.bytes


def timed(fn, path: str, runs: int) -> tuple[float, float, int]:
    """Median wall and CPU seconds; CPU time is the steadier figure on a shared machine."""
    walls, cpus = [], []
    count = 0
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        count = fn(path)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--file", help="use this file instead of generating one")
    parser.add_argument("--replay-steps", default="3600,60", help="comma-separated --step values for replay cases")
    parser.add_argument("--replay-runs", type=int, default=1, help="runs per replay case (a 60 s step takes minutes)")
    args = parser.parse_args()
    path = args.file or os.path.join(tempfile.gettempdir(), f"llm-bench-{args.n}.jsonl")
    if not os.path.exists(path):
        print(f"generating {args.n} lines into {path} ...", file=sys.stderr)
        generate.write(path, args.n)
    size_mb = os.path.getsize(path) / 1e6
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"orjson {orjson.__version__}; file: {size_mb:.0f} MB")
    print(f"{'case':<40} {'wall s':>8} {'CPU s':>8} {'lines/s (CPU)':>14} {'MB/s':>8}")
    for name, fn in (("read lines (bytes)", bare_read), ("read + orjson.loads (parse limit)", bare_orjson),
                     ("exporter: tailer → native → metrics", exporter_read)):
        wall, cpu, count = timed(fn, path, args.runs)
        print(f"{name:<40} {wall:8.2f} {cpu:8.2f} {count / cpu:14,.0f} {size_mb / cpu:8.1f}")
    for step in (int(part) for part in args.replay_steps.split(",") if part):
        times = []
        for _ in range(args.replay_runs):
            start = time.process_time()
            lines, samples, nbytes = replay_backfill(path, step)
            times.append(time.process_time() - start)
        seconds = statistics.median(times)  # CPU seconds, as above
        name = f"replay --step {step}s"
        print(f"{name:<40} {seconds:8.2f} {lines / seconds:12,.0f} {size_mb / seconds:8.1f}   "
              f"{samples:,} samples ({samples / seconds:,.0f}/s), {nbytes / 1e6:,.0f} MB written")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
