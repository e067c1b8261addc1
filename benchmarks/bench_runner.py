"""Every performance figure of the exporter in one run, with mtail and bare orjson beside it.

    python benchmarks/bench_runner.py [-n 1000000] [--runs 3] [--live-seconds 10] [--no-mtail] [--profile]

Prints one table (target, ours, mtail, notes) and the machine it ran on. Wall and CPU time are both
reported: CPU time is the steadier figure on a shared machine. Every timed case is a median of
``--runs`` runs. ``-n`` scales the replay files (the other cases have fixed sizes); ``-n 200000``
takes about two minutes, the default about ten (files are generated once per --workdir). Needs nothing beyond
the package and its dependencies, plus ``/usr/bin/mtail`` (Debian package ``mtail``) for its column.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.metadata
import io
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
import urllib.request
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_callback
import generate
from prometheus_client.exposition import generate_latest

from llm_log_exporter.aggregate.ingest import Ingestor
from llm_log_exporter.aggregate.store import Store
from llm_log_exporter.aggregate.usage import DUR_BUCKETS
from llm_log_exporter.daemon import Config, Exporter, build_usage
from llm_log_exporter.exposition.render import render_text
from llm_log_exporter.parsers import FORMATS, get_parser

ROOT = Path(__file__).resolve().parent.parent
MTAIL = shutil.which("mtail")
MTAIL_PROGS = Path(__file__).resolve().parent / "mtail"
TICK = os.sysconf("SC_CLK_TCK")
PARSED = re.compile(rb'^llm_exporter_lines_total\{[^}]*result="parsed"[^}]*\} ([0-9.e+]+)$', re.M)
REQUESTS = re.compile(rb"^llm_requests_total\{[^}]*\} ([0-9.e+]+)$", re.M)
TOKENS = re.compile(rb"^llm_tokens_total\{[^}]*\} ([0-9.e+]+)$", re.M)


# ---------------------------------------------------------------- helpers


def proc_cpu(pid: int) -> float:
    """utime + stime of a live process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
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


def live_tail(sample: list[bytes], rate: int, seconds: float, workdir: Path, mtail: bool) -> dict:
    target = workdir / ("live-mtail.jsonl" if mtail else "live.jsonl")
    target.write_bytes(b"")
    args = ["-logs", str(target)] if mtail else ["--file", str(target)]
    with Daemon(args, mtail=mtail) as d:
        d.wait_http("/metrics" if mtail else "/readyz")
        time.sleep(0.5)
        cpu0, wall0 = proc_cpu(d.pid), time.perf_counter()
        written = writer(target, sample, rate, seconds)
        wall = time.perf_counter() - wall0
        cpu = proc_cpu(d.pid) - cpu0
        lag = written - total(REQUESTS if mtail else PARSED, d.scrape())
        t0 = time.perf_counter()
        d.wait_count(REQUESTS if mtail else PARSED, written, timeout=60, interval=0.01)
        drain = time.perf_counter() - t0
    target.unlink()
    return {"rate": written / wall, "cpu_pct": 100 * cpu / wall, "lag": lag, "drain": drain}


def visibility(sample: list[bytes], workdir: Path, count: int = 200) -> dict:
    """Append one line, scrape until its counter moved: write → visible in /metrics."""
    target = workdir / "latency.jsonl"
    target.write_bytes(b"".join(sample[:20]))  # few series: a scrape costs ~1 ms, the resolution
    probe = orjson.loads(sample[0])
    probe.update(tenant_id="latency-probe", status="success")
    line = orjson.dumps(probe) + b"\n"
    needle = re.compile(rb'^llm_requests_total\{[^}]*status="success",tenant_id="latency-probe"\} ([0-9.e+]+)$', re.M)
    delays = []
    with Daemon(["--file", str(target)]) as d:
        d.wait_http("/readyz")
        for i in range(1, count + 1):
            time.sleep(0.02)
            with open(target, "ab") as f:
                f.write(line)
            t0 = time.perf_counter()
            while total(needle, d.scrape()) < i:
                time.sleep(0.002)  # back-to-back scrapes would hold the daemon's GIL against its tailer
            delays.append((time.perf_counter() - t0) * 1000)
    target.unlink()
    delays.sort()
    return {"p50": delays[len(delays) // 2], "p99": delays[int(len(delays) * 0.99) - 1], "max": delays[-1]}


def scrape_figures(path: Path, runs: int) -> dict:
    """Scrape time of a daemon holding ``path``'s label sets: fast text vs prometheus-client (OpenMetrics)."""
    with Daemon(["--file", str(path), "--max-tenants", "100000"]) as d:
        d.wait_http("/readyz")
        body = d.scrape()
        series = sum(1 for ln in body.splitlines() if ln and not ln.startswith(b"#"))
        text, om = [], []
        for _ in range(max(runs, 5)):
            t0 = time.perf_counter()
            d.scrape()
            text.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            d.scrape("application/openmetrics-text; version=1.0.0")
            om.append(time.perf_counter() - t0)
        rss, hwm = proc_rss_mb(d.pid)
    return {"series": series, "text_ms": 1000 * statistics.median(text), "om_ms": 1000 * statistics.median(om),
            "rss": rss, "hwm": hwm, "bytes": len(body)}  # fmt: skip


def render_in_process(path: Path) -> dict:
    """Pure render time in-process: prometheus-client's generate_latest vs render_text, same registry."""
    exporter = Exporter(Config(files=[str(path)], poll=True, max_tenants=100_000))
    exporter.tailer.poll_once()
    exporter.tailer.close()
    exporter.store.ready.set()
    out = {}
    for name, fn in (("generate_latest", generate_latest), ("render_text", render_text)):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn(exporter.registry)
            times.append(time.perf_counter() - t0)
        out[name] = 1000 * statistics.median(times)
    return out


def scrape_under_load(path: Path, sample: list[bytes], rate: int, seconds: float, workdir: Path) -> dict:
    """Two threads scrape the wide daemon back to back while the writer appends ``rate`` lines/s."""
    target = workdir / "wide-live.jsonl"
    shutil.copyfile(path, target)
    stop = threading.Event()
    scrapes = [0]
    with Daemon(["--file", str(target), "--max-tenants", "100000"]) as d:
        d.wait_http("/readyz")
        base = total(PARSED, d.scrape())

        def scraper() -> None:
            while not stop.is_set():
                d.scrape()
                scrapes[0] += 1

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
            f"mtail {mtail}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1_000_000, help="lines of the replay file")
    parser.add_argument("--runs", type=int, default=3, help="runs per timed case (median)")
    parser.add_argument("--live-seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=20_000, help="live tail append rate, lines/s")
    parser.add_argument("--workdir", default=None, help="where generated files go (default: a temp dir)")
    parser.add_argument("--no-mtail", action="store_true")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the replay path")
    args = parser.parse_args()
    mtail = MTAIL is not None and not args.no_mtail
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="llm-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    n, runs = args.n, args.runs
    small_n = max(n // 10, 10_000)
    print(f"machine: {machine()}")
    print(f"workdir: {workdir}; -n {n:,}, {runs} runs per case (medians)", flush=True)

    big = generate_file(workdir / f"native-{n}.jsonl", n)
    small = generate_file(workdir / f"native-{small_n}.jsonl", small_n)
    litellm_file = generate_file(workdir / f"litellm-{small_n}.jsonl", small_n, "litellm")
    empty = workdir / "empty.jsonl"
    empty.write_bytes(b"")
    with open(small, "rb") as f:
        sample = f.readlines()[:20_000]
    rows: list[tuple[str, str, str, str]] = []

    def row(figure: str, target: str, ours: str, other: str = "") -> None:
        rows.append((figure, target, ours, other))
        print(f"  {figure}: {ours}" + (f"  | mtail: {other}" if other else ""), flush=True)

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

    print("2-process split of the replay parse (experiment) ...", flush=True)
    sp = median_fields([split_replay(big) for _ in range(runs)])
    row("replay split over 2 processes (experiment)", "keep only if it wins",
        f"{n / sp['wall']:,.0f} lines/s wall vs {n / ours['wall']:,.0f} single ({ours['wall'] / sp['wall']:.2f}x); "
        f"CPU {sp['cpu']:.2f} s vs {ours['cpu']:.2f} s")

    print(f"live tail at {args.rate:,} lines/s for {args.live_seconds:.0f} s ...", flush=True)
    lt = median_fields([live_tail(sample, args.rate, args.live_seconds, workdir, False) for _ in range(runs)])
    mlt = median_fields([live_tail(sample, args.rate, args.live_seconds, workdir, True) for _ in range(runs)]) \
        if mtail else None  # fmt: skip
    row(f"live tail, {args.rate // 1000}k lines/s, open/append/close per line", "keeps up; ≤ 10% of a core",
        f"{lt['cpu_pct']:.1f}% of a core at {lt['rate']:,.0f} lines/s; lag at end {lt['lag']:.0f} lines, "
        f"drained in {1000 * lt['drain']:.0f} ms",
        f"{mlt['cpu_pct']:.1f}% of a core; lag {mlt['lag']:.0f}, drained in {1000 * mlt['drain']:.0f} ms"
        if mlt else "")  # fmt: skip

    print("write → visible in /metrics ...", flush=True)
    vis = median_fields([visibility(sample, workdir) for _ in range(runs)])
    row("write → visible in /metrics", "p99 ≤ 50 ms",
        f"p50 {vis['p50']:.1f} ms, p99 {vis['p99']:.1f} ms, max {vis['max']:.1f} ms (inotify)")

    print("scrapes ...", flush=True)
    narrow = wide_file(workdir / "series-10k.jsonl", 20, 20_000)  # 400 label sets ≈ 10k series
    wide = wide_file(workdir / "labelsets-10k.jsonl", 500, 30_000)  # 10k label sets ≈ 250k series
    sn = scrape_figures(narrow, runs)
    sw = scrape_figures(wide, runs)
    rn, rw = render_in_process(narrow), render_in_process(wide)
    row(f"scrape, {sn['series']:,} series (400 label sets)", "≤ 50 ms",
        f"{sn['text_ms']:.1f} ms text (prometheus-client path: OpenMetrics {sn['om_ms']:.1f} ms); "
        f"render {rn['render_text']:.1f} ms vs generate_latest {rn['generate_latest']:.1f} ms in-process")
    row(f"scrape, {sw['series']:,} series (10k label sets)", "≤ 50 ms",
        f"{sw['text_ms']:.0f} ms text, {sw['bytes'] / 1e6:.0f} MB (OpenMetrics {sw['om_ms']:.0f} ms); "
        f"render {rw['render_text']:.0f} ms vs generate_latest {rw['generate_latest']:.0f} ms in-process")
    ul = scrape_under_load(wide, sample, args.rate, min(args.live_seconds, 5.0), workdir)
    row("concurrent scrapes (2 threads, 10k label sets) during live tail", "don't stall ingestion",
        f"{ul['scrapes_per_s']:.1f} scrapes/s; writer {ul['rate']:,.0f} lines/s; lag at end {ul['lag']:.0f} lines, "
        f"drained in {1000 * ul['drain']:.0f} ms")

    print("memory ...", flush=True)
    ds = daemon_replay(small, empty)
    row("RSS at 10k series / at 10k label sets (after scrapes)", "≤ 80 MB",
        f"{sn['rss']:.0f} MB (peak {sn['hwm']:.0f}) / {sw['rss']:.0f} MB (peak {sw['hwm']:.0f} MB)",
        f"one-shot over {n:,} lines: peak {mt['rss']:.0f} MB" if mt else "")
    row(f"RSS after {small_n:,} vs {n:,} lines", "constant in file size",
        f"{ds['rss']:.0f} MB vs {dr['rss']:.0f} MB (peaks {ds['hwm']:.0f} / {dr['hwm']:.0f} MB)")

    print("callback overhead ...", flush=True)
    cb = median_fields([bench_callback.measure(20_000, str(workdir)) for _ in range(runs)])
    row("callback overhead per LLM call", "p99 ≤ 50 µs",
        f"p50 {cb['p50']:.1f} µs, p99 {cb['p99']:.1f} µs, p99.9 {cb['p999']:.1f} µs (one open-file write per call)")

    print("LiteLLM StandardLoggingPayload format ...", flush=True)
    ll_limit = timed(bare_orjson, litellm_file, runs)
    ll_mb = ll_limit["mb"]
    limit_text = f"bare orjson {small_n / ll_limit['cpu']:,.0f} lines/s, {ll_mb / ll_limit['cpu']:.0f} MB/s"
    if "litellm" in FORMATS:
        ll = timed(lambda p: exporter_read(p, "litellm"), litellm_file, runs)
        row("LiteLLM payload format (~5 KB lines)", "≥ 150k lines/s",
            f"{ll['lines'] / ll['cpu']:,.0f} lines/s CPU, {ll_mb / ll['cpu']:.0f} MB/s ({limit_text})")
    else:
        row("LiteLLM payload format (~5 KB lines)", "≥ 150k lines/s", f"n/a (format not present); {limit_text}")

    if args.profile:
        print(profile_replay(small))

    print()
    print(f"| figure | target | llm-log-exporter |{' mtail 3.0.0~rc50 |' if mtail else ''}")
    print(f"|---|---|---|{'---|' if mtail else ''}")
    for figure, target, ours_text, other in rows:
        print(f"| {figure} | {target} | {ours_text} |" + (f" {other} |" if mtail else ""))


if __name__ == "__main__":
    main()
