"""Months of history into Prometheus, end to end, the way a FinOps analyst runs it.

    python benchmarks/bench_backfill.py [--days 90] [--per-day 5000] [--tenants 24] [--models 8]
                                        [--report-days 6] [--workdir DIR] [--keep]

1. Generates ``--days`` × ``--per-day`` schema-v1 request lines over ``--tenants`` × ``--models``
   (benchmarks/generate.py), ending a day before now (so the double-counting guard stays quiet).
2. Runs ``llm-log-exporter replay FILE --tsdb DIR`` as a process, **at default options**, and prints
   its wall and CPU time (promtool included), the estimate it printed, samples, series, blocks and
   the size of DIR.
3. Starts a real Prometheus on DIR (``/usr/bin/prometheus``, retention long enough for the history)
   and checks that ``sum(llm_cost_usd_total)`` at every day boundary equals the cumulative daily
   costs of one ``report --period day -f json``, and at ``--report-days`` evenly spaced days equals
   ``report --end DAY -f json``'s total (a report process per day, as a user would check).

Prints the figures and the load average; exits non-zero when a figure misses its target (≤ 10 min)
or a value differs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate

ROOT = Path(__file__).resolve().parent.parent
DAY = 86400
TARGET_SECONDS = 600
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "llm_log_exporter", *args]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load avg {one:.2f} (1 min) / {five:.2f} (5 min)"


def timed_process(argv: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds (the process and every child it waited for: promtool) and its stderr."""
    wall = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    err = proc.stderr.read().decode(errors="replace")  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - wall
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err[-3000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, err


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class Prometheus:
    def __init__(self, data_dir: Path, workdir: Path, retention_days: int) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise SystemExit("prometheus is not on PATH (Debian: apt-get install prometheus)")
        config = workdir / "prometheus.yml"
        config.write_text("global: {}\n")
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
             f"--web.listen-address={self.url[7:]}", f"--storage.tsdb.retention.time={retention_days}d"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"prometheus exited: {(workdir / 'prometheus.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("prometheus did not become ready in 300 s")

    def scalar(self, expr: str, at: float) -> float | None:
        query = urllib.parse.urlencode({"query": expr, "time": at})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=60) as r:
            result = json.loads(r.read())["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def same(a: float | None, b: float) -> bool:
    return a is not None and abs(a - b) <= 1e-9 * max(1.0, abs(b))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--per-day", type=int, default=5000)
    parser.add_argument("--tenants", type=int, default=24)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--report-days", type=int, default=6, help="days checked with their own report --end")
    parser.add_argument("--workdir", help="default: a new temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the workdir (the log, DIR)")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="llm-backfill-"))
    workdir.mkdir(parents=True, exist_ok=True)
    n = args.days * args.per_day
    start = (math.floor(time.time() / DAY) - args.days - 1) * DAY
    log = workdir / f"usage-{args.days}d.jsonl"
    data = workdir / "data"
    shutil.rmtree(data, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores; {load()}; workdir {workdir}", flush=True)
    wall = time.perf_counter()
    generate.write(str(log), n, start=start, spacing=DAY / args.per_day, tenants=args.tenants, models=args.models)
    print(f"generated {n:,} lines ({args.days} days × {args.per_day:,}/day, {args.tenants} tenants × "
          f"{args.models} models), {log.stat().st_size / 1e6:.0f} MB, in {time.perf_counter() - wall:.1f} s",
          flush=True)

    before = load()
    seconds, cpu, err = timed_process(cli("replay", str(log), "--tsdb", str(data)))
    after = load()
    for line in err.splitlines():
        if line.startswith(("estimate:", "read ", "wrote ", "warning:", "Prometheus deletes")):
            print(f"  | {line}")
    verdict = "ok" if seconds <= TARGET_SECONDS else f"MISSED (target ≤ {TARGET_SECONDS} s)"
    print(f"replay FILE --tsdb DIR (default options): {seconds:.1f} s wall, {cpu:.1f} s CPU with promtool, "
          f"{n / seconds:,.0f} lines/s; DIR {du(data) / 1e6:.0f} MB; {verdict}; {before} before, {after} after",
          flush=True)

    daily = json.loads(subprocess.run(cli("report", str(log), "--period", "day", "-f", "json", "--by", "tenant"),
                                      capture_output=True, env=ENV, check=True).stdout)
    per_day: dict[str, float] = {}
    for row in daily["rows"]:
        per_day[row["period"]] = per_day.get(row["period"], 0.0) + row["cost_usd"]
    boundaries = [start + DAY * (i + 1) for i in range(args.days)]  # the last one: the end of the data
    server = Prometheus(data, workdir, args.days + 30)
    failures = 0
    try:
        cumulative = 0.0
        worst = 0.0
        for day in boundaries:
            cumulative += per_day.get(time.strftime("%Y-%m-%d", time.gmtime(day - DAY)), 0.0)
            got = server.scalar("sum(llm_cost_usd_total)", day)
            worst = max(worst, abs((got or 0.0) - cumulative))
            if not same(got, cumulative):
                failures += 1
                print(f"  DIFFERS at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(day))}: prometheus {got} "
                      f"vs report --period day cumulative {cumulative}")
        print(f"sum(llm_cost_usd_total) at all {len(boundaries)} day boundaries vs `report --period day` summed: "
              f"{len(boundaries) - failures} equal, largest difference {worst:.2e} USD", flush=True)
        picks = sorted({boundaries[round(i * (len(boundaries) - 1) / max(1, args.report_days - 1))]
                        for i in range(args.report_days)})
        for day in picks:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(day))
            report = json.loads(subprocess.run(cli("report", str(log), "--end", stamp, "-f", "json"),
                                               capture_output=True, env=ENV, check=True).stdout)
            expected = report["total"]["cost_usd"]
            got = server.scalar("sum(llm_cost_usd_total)", day)
            ok = same(got, expected)
            failures += not ok
            print(f"  at {stamp}: prometheus sum(llm_cost_usd_total) = {got!r}, report --end {stamp} = "
                  f"{expected!r}: {'equal' if ok else 'DIFFERS'}", flush=True)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"done: replay {seconds:.1f} s ({verdict}), {failures} difference(s); {load()}")
    return 1 if failures or seconds > TARGET_SECONDS else 0


if __name__ == "__main__":
    sys.exit(main())
