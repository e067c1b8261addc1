"""Every performance figure of the exporter in one run, with mtail and bare orjson beside it.

    python benchmarks/bench_runner.py [-n 1000000] [--runs 3] [--live-seconds 10] [--no-mtail] [--profile]
                                      [--only live,visible,scrapes]
    python benchmarks/bench_runner.py --replay-only -n 1000000 --runs 1   # replay vs mtail one-shot only

Prints one table (target, ours, mtail, notes) and the machine it ran on. Wall and CPU time are both
reported: CPU time is the steadier figure on a shared machine. Every timed case is a median of
``--runs`` runs. ``-n`` scales the replay files (the other cases have fixed sizes); ``-n 200000``
takes about two minutes, the default about ten (files are generated once per --workdir). Needs nothing beyond
the package and its dependencies, plus ``/usr/bin/mtail`` (Debian package ``mtail``) for its column.
"""

from __future__ import annotations

import argparse
import collections
import compileall
import cProfile
import http.client
import importlib.metadata
import io
import math
import multiprocessing
import os
import platform
import pstats
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_callback
import generate
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from llm_log_exporter.aggregate.ingest import Ingestor
from llm_log_exporter.aggregate.store import Store
from llm_log_exporter.aggregate.usage import DUR_BUCKETS
from llm_log_exporter.daemon import Config, Exporter, build_ingestor, build_usage
from llm_log_exporter.exposition.render import OPENMETRICS, TEXT, Renderer
from llm_log_exporter.parsers import FORMATS, get_parser

ROOT = Path(__file__).resolve().parent.parent
MTAIL = shutil.which("mtail")
MTAIL_PROGS = Path(__file__).resolve().parent / "mtail"
TICK = os.sysconf("SC_CLK_TCK")
PARSED = re.compile(rb'^llm_exporter_lines_total\{[^}]*result="parsed"[^}]*\} ([0-9.e+]+)$', re.M)
REQUESTS = re.compile(rb"^llm_requests_total\{[^}]*\} ([0-9.e+]+)$", re.M)
TOKENS = re.compile(rb"^llm_tokens_total\{[^}]*\} ([0-9.e+]+)$", re.M)
# What Prometheus 2.42 sends with every scrape (OpenMetrics first; gzip).
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
TEXT_ACCEPT = "text/plain;version=0.0.4"
SCRAPES = {  # name → (Accept, gzip)
    "OpenMetrics+gzip (Prometheus)": (PROMETHEUS_ACCEPT, True),
    "OpenMetrics": (PROMETHEUS_ACCEPT, False),
    "text+gzip": (TEXT_ACCEPT, True),
    "text": (TEXT_ACCEPT, False),
}


# ---------------------------------------------------------------- helpers


def proc_cpu(pid: int) -> float:
    """utime + stime of a live process, seconds."""
    return proc_cpu_path(f"/proc/{pid}/stat")


def proc_cpu_path(stat_path: str) -> float:
    fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return rss / 1024, hwm / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, accept: str = "") -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=60) as reply:
        return reply.read()


def total(pattern: re.Pattern, body: bytes) -> float:
    return sum(float(v) for v in pattern.findall(body))


def median_fields(results: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


class Daemon:
    """The exporter (or mtail) as a real subprocess on 127.0.0.1."""

    def __init__(self, args: list[str], mtail: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if mtail:
            cmd = [MTAIL, "-progs", str(MTAIL_PROGS), "-address", "127.0.0.1", "-port", str(self.port), *args]
        else:
            cmd = [sys.executable, "-m", "llm_log_exporter", "--host", "127.0.0.1", "--port", str(self.port),
                   "--log-level", "warning", *args]  # fmt: skip
        self.started = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = self.proc.pid

    def wait_http(self, path: str, timeout: float = 600) -> float:
        """Seconds from start until ``path`` answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}")
            try:
                http_get(self.url + path)
                return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.01)
        raise TimeoutError(path)

    def scrape(self, accept: str = "") -> bytes:
        return http_get(self.url + "/metrics", accept)

    def wait_count(self, pattern: re.Pattern, expected: float, timeout: float = 600, interval: float = 0.05) -> None:
        deadline = time.monotonic() + timeout
        while total(pattern, self.scrape()) < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"count never reached {expected}")
            time.sleep(interval)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def generate_file(path: Path, n: int, fmt: str = "native") -> Path:
    if not path.exists():
        print(f"  generating {n:,} {fmt} lines into {path} ...", file=sys.stderr)
        generate.write(str(path), n, fmt=fmt)
    return path


def wide_file(path: Path, tenants: int, lines: int) -> Path:
    """Lines over ``tenants`` x 20 models distinct label sets (each set seen at least once)."""
    with open(path, "wb") as out:
        for i, ev in enumerate(generate.events(lines, seed=7)):
            provider, model = generate.MODELS[i % len(generate.MODELS)]
            ev.update(provider=provider, model=model, tenant_id=f"t-{(i // len(generate.MODELS)) % tenants:04d}")
            out.write(orjson.dumps(ev) + b"\n")
    return path


# ---------------------------------------------------------------- in-process replay


def bare_orjson(path: Path) -> int:
    n = 0
    loads = orjson.loads
    with open(path, "rb") as f:
        for line in f:
            loads(line)
            n += 1
    return n


def bare_read(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def exporter_read(path: Path, fmt: str = "native") -> int:
    exporter = Exporter(Config(files=[str(path)], poll=True, format=fmt))
    exporter.tailer.poll_once()
    exporter.tailer.close()
    return exporter.store.files[str(path)].lines["parsed"]


def timed(fn: Callable[[Path], int], path: Path, runs: int) -> dict:
    results = []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        count = fn(path)
        results.append({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "lines": count})
    out = median_fields(results)
    out["mb"] = path.stat().st_size / 1e6
    return out


# ---------------------------------------------------------------- 2-process split (experiment)


def _half(args: tuple[str, int, int]) -> tuple[dict, float]:
    path, start, end = args
    store = Store(build_usage(Config(files=[path])))
    ingestor = Ingestor(store, get_parser("native"))
    cpu = time.process_time()
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    lines = data.split(b"\n")
    lines.pop()
    for i in range(0, len(lines), 8192):
        ingestor.on_lines(path, lines[i:i + 8192], i + 1, 0)
    return {k: rec[:DUR_BUCKETS] for k, rec in store.usage.records.items()}, time.process_time() - cpu


def split_replay(path: Path) -> dict:
    """Parse two halves in two processes and merge the plain counters (breakers etc. ignored)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(size // 2)
        f.readline()
        middle = f.tell()
    wall = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        parts = pool.map(_half, [(str(path), 0, middle), (str(path), middle, size)])
    merged: dict = {}
    for records, _ in parts:
        for key, rec in records.items():
            mine = merged.setdefault(key, [0.0] * len(rec))
            for i, v in enumerate(rec):
                mine[i] += v
    lines = sum(rec[0] + rec[1] for rec in merged.values())
    return {"wall": time.perf_counter() - wall, "cpu": sum(cpu for _, cpu in parts), "lines": lines}


# ---------------------------------------------------------------- daemon figures


def daemon_replay(path: Path, empty: Path) -> dict:
    """Initial read through the real daemon: start → /readyz, minus the start-up of an empty file."""
    with Daemon(["--file", str(empty)]) as d:
        base_wall = d.wait_http("/readyz")
        base_cpu = proc_cpu(d.pid)
    with Daemon(["--file", str(path)]) as d:
        wall = d.wait_http("/readyz")
        cpu = proc_cpu(d.pid)
        rss, hwm = proc_rss_mb(d.pid)
    return {"wall": wall - base_wall, "cpu": cpu - base_cpu, "rss": rss, "hwm": hwm, "start": base_wall}


def append_all(src: Path, dst: Path) -> None:
    with open(src, "rb") as f, open(dst, "ab") as out:
        shutil.copyfileobj(f, out, 1 << 20)


def daemon_catchup(path: Path, n: int, workdir: Path, mtail: bool) -> dict:
    """A followed empty file gets ``n`` lines appended at once; time until all are counted."""
    target = workdir / ("catchup-mtail.jsonl" if mtail else "catchup.jsonl")
    target.write_bytes(b"")
    args = ["-logs", str(target)] if mtail else ["--file", str(target)]
    with Daemon(args, mtail=mtail) as d:
        d.wait_http("/metrics" if mtail else "/readyz")
        time.sleep(0.5)
        cpu0, wall0 = proc_cpu(d.pid), time.perf_counter()
        append_all(path, target)
        d.wait_count(REQUESTS if mtail else PARSED, n, interval=0.25 if mtail else 0.05)
        out = {"wall": time.perf_counter() - wall0, "cpu": proc_cpu(d.pid) - cpu0}
    target.unlink()
    return out


def mtail_one_shot(path: Path) -> dict:
    wall = time.perf_counter()
    proc = subprocess.Popen(
        [MTAIL, "-one_shot", "-one_shot_format", "prometheus", "-progs", str(MTAIL_PROGS), "-logs", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    body = proc.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall": time.perf_counter() - wall, "cpu": usage.ru_utime + usage.ru_stime,
            "rss": usage.ru_maxrss / 1024, "requests": total(REQUESTS, body),
            "tokens": total(TOKENS, body)}  # fmt: skip


def replay_cli(path: Path, out: Path) -> dict:
    """``llm-log-exporter replay FILE -o OUT`` as a process at default options (the step picked for the span,
    re-emission within the 5 min lookback): wall and CPU seconds, samples written."""
    wall = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "llm_log_exporter", "replay", str(path), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    err = proc.stderr.read().decode()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"replay failed: {err[-2000:]}")
    wrote = next(line for line in err.splitlines() if line.startswith("wrote "))
    samples = int(wrote.split(": ", 1)[1].split()[0].replace(",", ""))
    out.unlink()
    return {"wall": time.perf_counter() - wall, "cpu": usage.ru_utime + usage.ru_stime, "samples": samples}


def writer(target: Path, lines: list[bytes], rate: int, seconds: float, stop: threading.Event | None = None) -> int:
    """Append ``rate`` lines/s, opening and closing the file for every line, as a callback does."""
    tick = 0.01
    per_tick = max(1, int(rate * tick))
    written = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds and not (stop and stop.is_set()):
        for _ in range(per_tick):
            with open(target, "ab") as f:
                f.write(lines[written % len(lines)])
            written += 1
        delay = start + written / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    return written


def thread_cpu(pid: int) -> dict[int, float]:
    """utime + stime of each thread of a live process, seconds, by thread id."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out[int(tid)] = proc_cpu_path(f"/proc/{pid}/task/{tid}/stat")
        except OSError:
            continue
    return out


def live_tail(sample: list[bytes], rate: int, seconds: float, workdir: Path, mtail: bool) -> dict:
    """A writer appends ``rate`` lines/s (open/append/close per line); the daemon's CPU meanwhile.

    ``main_pct`` is the daemon's main thread (the tailer: wakes, reads, parses, aggregates), the rest its
    other threads (the inotify waker, the HTTP accept loop).
    """
    target = workdir / ("live-mtail.jsonl" if mtail else "live.jsonl")
    target.write_bytes(b"")
    args = ["-logs", str(target)] if mtail else ["--file", str(target)]
    with Daemon(args, mtail=mtail) as d:
        d.wait_http("/metrics" if mtail else "/readyz")
        time.sleep(0.5)
        cpu0, wall0, threads0 = proc_cpu(d.pid), time.perf_counter(), thread_cpu(d.pid)
        written = writer(target, sample, rate, seconds)
        wall = time.perf_counter() - wall0
        cpu = proc_cpu(d.pid) - cpu0
        main = thread_cpu(d.pid).get(d.pid, 0.0) - threads0.get(d.pid, 0.0)
        lag = written - total(REQUESTS if mtail else PARSED, d.scrape())
        t0 = time.perf_counter()
        d.wait_count(REQUESTS if mtail else PARSED, written, timeout=60, interval=0.01)
        drain = time.perf_counter() - t0
    target.unlink()
    return {"rate": written / wall, "cpu_pct": 100 * cpu / wall, "main_pct": 100 * main / wall, "lag": lag,
            "drain": drain}


def live_path_per_line(sample: list[bytes], rate: int, runs: int, nap: float = 0.0) -> float:
    """µs of CPU per line of the live path proper (parse, price, aggregate under the lock), in-process, as the
    daemon builds it (its price table and per-day sums): the batches a wake hands over at ``rate`` lines/s
    (a wake every 20 ms), best of ``runs`` passes. ``nap``: seconds slept between batches, as the daemon
    sleeps between wakes (a thread back from sleep runs on cold caches). Thread CPU inflates on a busy
    machine less than a daemon's share does; times ``rate`` it is the core share the path needs, wakes and
    reads aside."""
    config = Config(files=["live"])
    ingestor = build_ingestor(config, Store(build_usage(config, daily=True)))
    lines = [line.rstrip(b"\n") for line in sample]
    batch = max(1, rate // 50)
    best = math.inf
    for _ in range(max(runs, 3)):
        spent = 0.0
        for at in range(0, len(lines), batch):
            started = time.thread_time()
            ingestor.on_lines("live", lines[at:at + batch], at + 1, 0)
            spent += time.thread_time() - started
            if nap:
                time.sleep(nap)
        best = min(best, spent)
    return 1e6 * best / len(lines)


# Where a main-thread sample of the live daemon is spent, by its innermost frame of the package.
_LIVE_PARTS = [("parse_line (parsers/__init__.py", "JSON decode (orjson.loads in parse_line)"),
               ("parsers/", "input format parser (validation, event)"),
               ("aggregate/usage.py", "aggregation (Usage)"), ("aggregate/breaker.py", "aggregation (Usage)"),
               ("aggregate/ingest.py", "ingest loop (per line and batch)"),
               ("aggregate/prices.py", "ingest loop (per line and batch)"),
               ("tailing/lines.py", "line splitting"), ("tailing/stream.py", "reads, truncation check"),
               ("tailer.py", "wake: discovery, rotation, watches"),
               ("tailing/", "wake: discovery, rotation, watches"), ("glob.py", "wake: discovery, rotation, watches"),
               ("posixpath", "wake: discovery, rotation, watches")]


def profile_live(sample: list[bytes], rate: int, seconds: float, workdir: Path) -> str:
    """py-spy samples of the live daemon's main thread at ``rate`` lines/s, by part of the live path."""
    spy = shutil.which("py-spy")
    if spy is None:
        return "live profile: py-spy not installed (pip install py-spy)"
    target = workdir / "live-profile.jsonl"
    target.write_bytes(b"")
    raw = workdir / "live-profile.txt"
    with Daemon(["--file", str(target)]) as d:
        d.wait_http("/readyz")
        time.sleep(0.5)
        proc = subprocess.Popen([spy, "record", "-p", str(d.pid), "-d", str(int(seconds)), "-r", "200", "-f", "raw",
                                 "--threads", "-o", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall0, threads0 = time.perf_counter(), thread_cpu(d.pid)
        writer(target, sample, rate, seconds + 1)
        main = (thread_cpu(d.pid).get(d.pid, 0.0) - threads0.get(d.pid, 0.0)) / (time.perf_counter() - wall0)
        proc.wait()
    target.unlink()
    parts: collections.Counter = collections.Counter()
    busy = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if "MainThread" not in frames[0] or frames[-1].startswith(("Event.wait", "Condition.wait")):
            continue  # other threads; the tailer waiting for a wake
        busy += int(count)
        leaf = next((f for f in reversed(frames) if "llm_log_exporter" in f or "glob.py" in f
                     or "posixpath" in f), "")
        parts[next((name for key, name in _LIVE_PARTS if key in leaf), "other")] += int(count)
    raw.unlink()
    lines = [f"live path at {rate:,} lines/s, main thread {100 * main:.1f}% of a core (py-spy, {busy} samples):"]
    lines += [f"  {100 * main * n / busy:5.1f}% of a core  {name}" for name, n in parts.most_common()]
    return "\n".join(lines)


class Scraper:
    """One keep-alive connection scraping /metrics with the given headers, as Prometheus does."""

    def __init__(self, port: int, accept: str, gzip_ok: bool) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Accept": accept, **({"Accept-Encoding": "gzip"} if gzip_ok else {})}
        self.wire = 0  # bytes of the last response body as sent
        self.received = 0.0  # when its last byte arrived

    def get(self) -> tuple[bytes, float]:
        """(body, seconds from request to its last byte); a gzip body is decompressed after the clock stops."""
        t0 = time.perf_counter()
        self.conn.request("GET", "/metrics", headers=self.headers)
        reply = self.conn.getresponse()
        body = reply.read()
        self.received = time.perf_counter()
        elapsed = self.received - t0
        assert reply.status == 200, reply.status
        self.wire = len(body)
        if reply.getheader("Content-Encoding") == "gzip":
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        return body, elapsed

    def close(self) -> None:
        self.conn.close()


def _probe_count(body: bytes, needle: bytes) -> float:
    """The value of the one sample line ending in ``needle`` (0 when absent): cheaper than a regex over MBs."""
    at = body.find(needle)
    if at < 0:
        return 0.0
    at += len(needle)
    return float(body[at:body.index(b"\n", at)])


def visibility(path: Path, sample: list[bytes], workdir: Path, rate: int = 2000, count: int = 200) -> dict:
    """Write → visible at ``rate`` lines/s on a daemon holding ``path``'s series, scraped as Prometheus does.

    A writer appends ``rate`` lines/s (open/append/close per line, existing label sets); meanwhile one
    probe line of its own label set is appended at a time and /metrics is scraped (Prometheus' Accept
    header and gzip, decompressed) until its counter moved. Every scrape renders what changed meanwhile.
    """
    target = workdir / "visible.jsonl"
    shutil.copyfile(path, target)
    probe = orjson.loads(sample[0])
    probe.update(tenant_id="latency-probe", status="success")
    line = orjson.dumps(probe) + b"\n"
    needle = b'status="success",tenant_id="latency-probe"} '
    delays, scrapes = [], []
    stop = threading.Event()
    with Daemon(["--file", str(target), "--max-tenants", "100000"]) as d:
        d.wait_http("/readyz")
        scraper = Scraper(d.port, PROMETHEUS_ACCEPT, True)
        body, _ = scraper.get()
        series = sum(1 for ln in body.splitlines() if ln and not ln.startswith(b"#"))
        background = threading.Thread(target=writer, args=(target, sample, rate, 3600, stop), daemon=True)
        background.start()
        cpu0, wall0 = proc_cpu(d.pid), time.perf_counter()
        try:
            for i in range(1, count + 1):
                time.sleep(0.02)
                with open(target, "ab") as f:
                    f.write(line)
                t0 = time.perf_counter()
                while True:
                    body, elapsed = scraper.get()
                    scrapes.append(elapsed)
                    if _probe_count(body, needle) >= i:
                        break
                    time.sleep(0.002)  # back-to-back scrapes would hold the daemon's GIL against its tailer
                delays.append((scraper.received - t0) * 1000)  # the scraper has the body; parsing it is its own cost
        finally:
            stop.set()
            background.join()
        cpu = proc_cpu(d.pid) - cpu0
        cpu_pct = 100 * cpu / (time.perf_counter() - wall0)
        scraper.close()
    target.unlink()
    delays.sort()
    return {"p50": delays[len(delays) // 2], "p99": delays[int(len(delays) * 0.99) - 1], "max": delays[-1],
            "scrape_ms": 1000 * statistics.median(scrapes), "series": series, "cpu_pct": cpu_pct,
            "cpu_per_scrape_ms": 1000 * cpu / len(scrapes), "scrapes_per_probe": len(scrapes) / count}


def scrape_figures(path: Path, runs: int) -> dict:
    """Scrapes of a daemon holding ``path``'s label sets, per format and encoding: wall and daemon CPU.

    The first scrape renders every series (``first_ms``); later ones find them unchanged, as between two
    scrapes of an idle exporter. What a scrape costs while every series changes is ``render_in_process``'s
    cold figure; while lines arrive, ``visibility``'s scrape figure.
    """
    out: dict = {}
    with Daemon(["--file", str(path), "--max-tenants", "100000"]) as d:
        d.wait_http("/readyz")
        for name, (accept, gzip_ok) in SCRAPES.items():
            scraper = Scraper(d.port, accept, gzip_ok)
            body, first = scraper.get()
            n = max(30, 10 * runs)
            cpu0 = proc_cpu(d.pid)
            walls = [scraper.get()[1] for _ in range(n)]
            out[name] = {"ms": 1000 * statistics.median(walls), "cpu_ms": 1000 * (proc_cpu(d.pid) - cpu0) / n,
                         "first_ms": 1000 * first, "wire": scraper.wire, "bytes": len(body)}
            scraper.close()
        out["series"] = sum(1 for ln in body.splitlines() if ln and not ln.startswith(b"#"))
        out["rss"], out["hwm"] = proc_rss_mb(d.pid)
    return out


def render_in_process(path: Path, prometheus_client_openmetrics: bool = True) -> dict:
    """Pure render time in-process, same registry: prometheus-client's encoders vs the renderer, cold and warm.

    Cold: a new renderer, every series rendered (and prefixed) from scratch, as when every series changed.
    """
    exporter = Exporter(Config(files=[str(path)], poll=True, max_tenants=100_000))
    exporter.tailer.poll_once()
    exporter.tailer.close()
    exporter.store.ready.set()
    registry = exporter.registry
    warm = Renderer()
    cases = {"generate_latest": lambda: generate_latest(registry),
             "cold text": lambda: Renderer().render(registry, TEXT),
             "cold OpenMetrics": lambda: Renderer().render(registry, OPENMETRICS),
             "cold OpenMetrics+gzip": lambda: Renderer().render(registry, OPENMETRICS, True),
             "warm text": lambda: warm.render(registry, TEXT),
             "warm OpenMetrics": lambda: warm.render(registry, OPENMETRICS),
             "warm OpenMetrics+gzip": lambda: warm.render(registry, OPENMETRICS, True)}
    if prometheus_client_openmetrics:
        cases["prometheus-client OpenMetrics"] = lambda: generate_openmetrics(registry)
    out = {}
    for name, fn in cases.items():
        times = []
        for _ in range(3):
            t0 = time.process_time()
            fn()
            times.append(time.process_time() - t0)
        out[name] = 1000 * statistics.median(times)
    return out


def scrape_under_load(path: Path, sample: list[bytes], rate: int, seconds: float, workdir: Path) -> dict:
    """Two Prometheus-like scrapers scrape the wide daemon back to back while the writer appends ``rate`` lines/s."""
    target = workdir / "wide-live.jsonl"
    shutil.copyfile(path, target)
    stop = threading.Event()
    scrapes = [0]
    with Daemon(["--file", str(target), "--max-tenants", "100000"]) as d:
        d.wait_http("/readyz")
        base = total(PARSED, d.scrape())

        def scraper() -> None:
            client = Scraper(d.port, PROMETHEUS_ACCEPT, True)
            while not stop.is_set():
                client.get()
                scrapes[0] += 1
            client.close()

        threads = [threading.Thread(target=scraper) for _ in range(2)]
        for t in threads:
            t.start()
        t0 = time.perf_counter()
        written = writer(target, sample, rate, seconds)
        wall = time.perf_counter() - t0
        lag = base + written - total(PARSED, d.scrape())
        stop.set()
        for t in threads:
            t.join()
        t1 = time.perf_counter()
        d.wait_count(PARSED, base + written, timeout=60, interval=0.01)
        drain = time.perf_counter() - t1
    target.unlink()
    return {"rate": written / wall, "lag": lag, "drain": drain, "scrapes_per_s": scrapes[0] / wall}


def profile_replay(path: Path, top: int = 14) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    exporter_read(path)
    profiler.disable()
    buf = io.StringIO()
    pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


# ---------------------------------------------------------------- report


def python_speed() -> float:
    """µs for ``sum(range(1000))``, best of 5 × 2,000: how fast this machine runs Python right now. Its speed
    drifts by 2-3× within hours here; figures from different runs compare only alongside this one."""
    return 1e6 * min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) / 1024**2  # type: ignore[union-attr]
    mtail = "absent"
    if MTAIL:
        mtail = subprocess.run([MTAIL, "--version"], capture_output=True, text=True).stdout.split()[2]
    return (f"{model.group(1) if model else platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GB RAM, "
            f"load avg {os.getloadavg()[0]:.1f} at start; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}, orjson {orjson.__version__}, "
            f"prometheus-client {importlib.metadata.version('prometheus-client')}, "
            f"mtail {mtail}; sum(range(1000)) {python_speed():.1f} µs")  # fmt: skip


SECTIONS = ("replay", "daemon", "live", "visible", "scrapes", "memory", "callback", "litellm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1_000_000, help="lines of the replay file")
    parser.add_argument("--runs", type=int, default=3, help="runs per timed case (median)")
    parser.add_argument("--live-seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=20_000, help="live tail append rate, lines/s")
    parser.add_argument("--visible-rate", type=int, default=2_000, help="append rate during write → visible, lines/s")
    parser.add_argument("--workdir", default=None, help="where generated files go (default: a temp dir)")
    parser.add_argument("--no-mtail", action="store_true")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated figures to measure (default all): {', '.join(SECTIONS)}")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of the replay path and a py-spy profile of the live path")
    parser.add_argument("--replay-only", action="store_true",
                        help="only the replay rows (replay vs mtail one-shot); the same as --only replay")
    args = parser.parse_args()
    only = {"replay"} if args.replay_only else set(args.only.split(","))
    if only - set(SECTIONS):
        parser.error(f"--only: unknown {', '.join(sorted(only - set(SECTIONS)))}")
    mtail = MTAIL is not None and not args.no_mtail
    # The processes timed here import the package from bytecode, as an installed one does (pip compiles it at
    # install); a checkout under PYTHONDONTWRITEBYTECODE would compile every module again in every process.
    compileall.compile_dir(str(ROOT / "llm_log_exporter"), quiet=1)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="llm-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    n, runs = args.n, args.runs
    small_n = max(n // 10, 10_000)
    print(f"machine: {machine()}")
    print(f"workdir: {workdir}; -n {n:,}, {runs} runs per case (medians); figures: {', '.join(sorted(only))}",
          flush=True)

    big = generate_file(workdir / f"native-{n}.jsonl", n)
    small = generate_file(workdir / f"native-{small_n}.jsonl", small_n)
    series_34k = generate_file(workdir / "native-100000.jsonl", 100_000)  # the generator's 100k lines: ~34k series
    empty = workdir / "empty.jsonl"
    empty.write_bytes(b"")
    with open(small, "rb") as f:
        sample = f.readlines()[:20_000]
    rows: list[tuple[str, str, str, str]] = []

    def row(figure: str, target: str, ours: str, other: str = "") -> None:
        ours += f" [load avg {os.getloadavg()[0]:.1f}]"  # a shared machine: every figure says how busy it was
        rows.append((figure, target, ours, other))
        print(f"  {figure}: {ours}" + (f"  | mtail: {other}" if other else ""), flush=True)

    mt = dr = None
    if "replay" in only:
        print("replay (in-process, the daemon's initial read path) ...", flush=True)
        read = timed(bare_read, big, runs)
        limit = timed(bare_orjson, big, runs)
        ours = timed(exporter_read, big, runs)
        assert ours["lines"] == n, ours
        size = ours["mb"]
        row("read lines (bytes), no parse", "", f"{n / read['cpu']:,.0f} lines/s CPU")
        row("bare orjson.loads (the parse limit)", "",
            f"{n / limit['cpu']:,.0f} lines/s CPU, {size / limit['cpu']:.0f} MB/s")
        mt = mtail_one_shot(big) if mtail else None
        if mt:
            mt = median_fields([mt, *(mtail_one_shot(big) for _ in range(runs - 1))])
            same = mt["requests"] == n
            print(f"  mtail cross-check: requests {mt['requests']:,.0f} (expected {n:,}), tokens {mt['tokens']:,.0f}")
        row("replay, native, in-process", "≥ 500k lines/s",
            f"{n / ours['cpu']:,.0f} lines/s CPU ({n / ours['wall']:,.0f} wall), "
            f"{100 * limit['cpu'] / ours['cpu']:.0f}% of bare orjson",
            f"one-shot {n / mt['cpu']:,.0f} lines/s CPU ({n / mt['wall']:,.0f} wall), "
            f"{1e6 * mt['cpu'] / n:.1f} µs CPU/line; "
            f"ours = {mt['cpu'] / ours['cpu']:.1f}x" + ("" if same else " (COUNTS DIFFER)") if mt else "")  # fmt: skip
        print("2-process split of the replay parse (experiment) ...", flush=True)
        sp = median_fields([split_replay(big) for _ in range(runs)])
        row("replay split over 2 processes (experiment)", "keep only if it wins",
            f"{n / sp['wall']:,.0f} lines/s wall vs {n / ours['wall']:,.0f} single ({ours['wall'] / sp['wall']:.2f}x); "
            f"CPU {sp['cpu']:.2f} s vs {ours['cpu']:.2f} s")

        print(f"replay CLI at default options vs mtail -one_shot, the same {n:,} lines ...", flush=True)
        rc = median_fields([replay_cli(big, workdir / "replay.om") for _ in range(runs)])
        tiny = workdir / "one-line.jsonl"
        with open(big, "rb") as f:
            tiny.write_bytes(f.readline())
        start_cpu = median_fields([replay_cli(tiny, workdir / "replay.om") for _ in range(runs)])["cpu"]
        # what the samples cost: the process, less its start-up and the events (the in-process read above)
        per_sample = (rc["cpu"] - start_cpu - ours["cpu"]) / rc["samples"]
        row("replay CLI, default options, -o FILE (a process)", "≥ 3x mtail one-shot",
            f"{n / rc['cpu']:,.0f} lines/s CPU ({n / rc['wall']:,.0f} wall), {rc['samples']:,} samples; "
            f"render + write ≈ {1e6 * per_sample:.2f} µs CPU per sample (target ≤ 0.6)",
            f"replay = {mt['cpu'] / rc['cpu']:.2f}x mtail one-shot CPU, {mt['wall'] / rc['wall']:.2f}x wall"
            if mt else "")  # fmt: skip
        if mt:
            print(f"  replay vs mtail one-shot: {mt['cpu'] / rc['cpu']:.2f}x CPU, {mt['wall'] / rc['wall']:.2f}x wall "
                  f"(load avg {os.getloadavg()[0]:.1f})", flush=True)

    if "daemon" in only:
        print("replay through the real daemon (start → /readyz) ...", flush=True)
        dr = median_fields([daemon_replay(big, empty) for _ in range(runs)])
        row("replay, native, daemon until /readyz", "≥ 500k lines/s",
            f"{n / dr['cpu']:,.0f} lines/s CPU ({n / dr['wall']:,.0f} wall; start-up {dr['start']:.2f} s excluded)")
        cu = median_fields([daemon_catchup(big, n, workdir, False) for _ in range(runs)])
        mcu = median_fields([daemon_catchup(big, n, workdir, True) for _ in range(runs)]) if mtail else None
        row("catch-up, daemon following, n lines appended at once", "≥ 500k lines/s",
            f"{n / cu['cpu']:,.0f} lines/s CPU ({n / cu['wall']:,.0f} wall)",
            f"{n / mcu['cpu']:,.0f} lines/s CPU ({n / mcu['wall']:,.0f} wall); ours = {mcu['cpu'] / cu['cpu']:.1f}x"
            if mcu else "")  # fmt: skip

    if "live" in only:
        print(f"live tail at {args.rate:,} lines/s for {args.live_seconds:.0f} s ...", flush=True)
        lt = median_fields([live_tail(sample, args.rate, args.live_seconds, workdir, False) for _ in range(runs)])
        mlt = median_fields([live_tail(sample, args.rate, args.live_seconds, workdir, True) for _ in range(runs)]) \
            if mtail else None  # fmt: skip
        row(f"live tail, {args.rate // 1000}k lines/s, open/append/close per line", "keeps up; ≤ 10% of a core",
            f"{lt['cpu_pct']:.1f}% of a core (tailer thread {lt['main_pct']:.1f}%) at {lt['rate']:,.0f} lines/s; "
            f"lag at end {lt['lag']:.0f} lines, drained in {1000 * lt['drain']:.0f} ms",
            f"{mlt['cpu_pct']:.1f}% of a core; lag {mlt['lag']:.0f}, drained in {1000 * mlt['drain']:.0f} ms"
            if mlt else "")  # fmt: skip
        per_line = live_path_per_line(sample, args.rate, runs)
        napping = live_path_per_line(sample[:4000], args.rate, runs, nap=0.02)
        row(f"live path per line, in-process ({args.rate // 50} lines per wake)", "",
            f"{per_line:.2f} µs CPU per line: {per_line * args.rate / 1e4:.1f}% of a core at {args.rate:,} lines/s "
            f"(wakes, reads and the inotify thread aside); {napping:.2f} µs with a 20 ms sleep between batches "
            f"as between the daemon's wakes")
        if args.profile:
            print(profile_live(sample, args.rate, args.live_seconds, workdir), flush=True)

    if "visible" in only:
        print(f"write → visible in /metrics at {args.visible_rate:,} lines/s ...", flush=True)
        vis = median_fields([visibility(series_34k, sample, workdir, args.visible_rate) for _ in range(runs)])
        row(f"write → visible in /metrics, {args.visible_rate / 1000:g}k lines/s, {vis['series']:,.0f} series",
            "p99 ≤ 50 ms",
            f"p50 {vis['p50']:.1f} ms, p99 {vis['p99']:.1f} ms, max {vis['max']:.1f} ms (inotify; Prometheus' "
            f"Accept and gzip); scrape {vis['scrape_ms']:.1f} ms wall, {vis['scrapes_per_probe']:.1f} per probe; "
            f"daemon {vis['cpu_per_scrape_ms']:.1f} ms CPU per scrape (ingestion included), "
            f"{vis['cpu_pct']:.0f}% of a core")

    sn = sw = None
    if "scrapes" in only:
        print("scrapes ...", flush=True)
        narrow = wide_file(workdir / "series-10k.jsonl", 20, 20_000)  # 400 label sets ≈ 13.7k series
        wide = wide_file(workdir / "labelsets-10k.jsonl", 500, 30_000)  # 10k label sets ≈ 250k series
        for label, path, target in (("400 label sets", narrow, "≤ 50 ms"), ("generator's 100k lines", series_34k,
                                                                             "OpenMetrics ≤ 1.5x text"),
                                    ("10k label sets", wide, "")):
            figures = scrape_figures(path, runs)
            render = render_in_process(path, prometheus_client_openmetrics=path != wide)
            om, text = figures["OpenMetrics+gzip (Prometheus)"], figures["text"]
            row(f"scrape, {figures['series']:,} series ({label})", target,
                "; ".join(f"{name} {f['ms']:.1f} ms ({f['cpu_ms']:.1f} ms CPU, {f['wire'] / 1e6:.2f} MB)"
                          for name, f in figures.items() if isinstance(f, dict))
                + f"; OpenMetrics/text: {figures['OpenMetrics']['cpu_ms'] / max(text['cpu_ms'], 1e-9):.2f}x CPU, "
                  f"gzip {om['cpu_ms'] / max(figures['text+gzip']['cpu_ms'], 1e-9):.2f}x; "
                  f"first scrape {om['first_ms']:.0f} ms")
            row(f"render in-process, {figures['series']:,} series", "",
                "; ".join(f"{name} {ms:.1f} ms" for name, ms in render.items()) + " (CPU)")
            if path == narrow:
                sn = figures
            elif path == wide:
                sw = figures
        ul = scrape_under_load(wide, sample, args.rate, min(args.live_seconds, 5.0), workdir)
        row("concurrent scrapes (2 Prometheus-like, 10k label sets) during live tail", "don't stall ingestion",
            f"{ul['scrapes_per_s']:.1f} scrapes/s; writer {ul['rate']:,.0f} lines/s; lag at end {ul['lag']:.0f} "
            f"lines, drained in {1000 * ul['drain']:.0f} ms")

    if "memory" in only:
        print("memory ...", flush=True)
        ds = daemon_replay(small, empty)
        if sn and sw:
            row("RSS at 13.7k series / at 10k label sets (after scrapes)", "≤ 80 MB",
                f"{sn['rss']:.0f} MB (peak {sn['hwm']:.0f}) / {sw['rss']:.0f} MB (peak {sw['hwm']:.0f} MB)",
                f"one-shot over {n:,} lines: peak {mt['rss']:.0f} MB" if mt else "")
        dr = dr or daemon_replay(big, empty)
        row(f"RSS after {small_n:,} vs {n:,} lines", "constant in file size",
            f"{ds['rss']:.0f} MB vs {dr['rss']:.0f} MB (peaks {ds['hwm']:.0f} / {dr['hwm']:.0f} MB)")

    if "callback" in only:
        print("callback overhead ...", flush=True)
        cb = median_fields([bench_callback.measure(20_000, str(workdir)) for _ in range(runs)])
        row("callback overhead per LLM call", "p99 ≤ 50 µs",
            f"p50 {cb['p50']:.1f} µs, p99 {cb['p99']:.1f} µs, p99.9 {cb['p999']:.1f} µs (one open-file write per call)")

    if "litellm" in only:
        print("LiteLLM StandardLoggingPayload format ...", flush=True)
        litellm_file = generate_file(workdir / f"litellm-{small_n}.jsonl", small_n, "litellm")
        ll_limit = timed(bare_orjson, litellm_file, runs)
        ll_mb = ll_limit["mb"]
        limit_text = f"bare orjson {small_n / ll_limit['cpu']:,.0f} lines/s, {ll_mb / ll_limit['cpu']:.0f} MB/s"
        if "litellm" in FORMATS:
            ll = timed(lambda p: exporter_read(p, "litellm"), litellm_file, runs)
            row("LiteLLM payload format (~5 KB lines)", "≥ 150k lines/s",
                f"{ll['lines'] / ll['cpu']:,.0f} lines/s CPU, {ll_mb / ll['cpu']:.0f} MB/s ({limit_text})")
        else:
            row("LiteLLM payload format (~5 KB lines)", "≥ 150k lines/s", f"n/a (format not present); {limit_text}")

    if args.profile and "replay" in only:
        print(profile_replay(small))

    table(rows, mtail)


def table(rows: list[tuple[str, str, str, str]], mtail: bool) -> None:
    print()
    print(f"| figure | target | llm-log-exporter |{' mtail 3.0.0~rc50 |' if mtail else ''}")
    print(f"|---|---|---|{'---|' if mtail else ''}")
    for figure, target, ours_text, other in rows:
        print(f"| {figure} | {target} | {ours_text} |" + (f" {other} |" if mtail else ""))
    print(f"load avg at the end: {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[1]:.1f} (5 min)")


if __name__ == "__main__":
    main()
