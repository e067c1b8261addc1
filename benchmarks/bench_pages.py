"""What the per-day sums of the landing page cost: ingestion with and without them, the page and the JSON
API at realistic label sets, and the state file's growth.

    python benchmarks/bench_pages.py [-n 300000] [--days 60] [--runs 3]

Lines come from ``generate.py`` (20 models, 5 providers, 50 skewed tenants) spread evenly over ``--days``
days up to now, so every day holds up to ~1000 label sets. Ingestion is the daemon's own path
(``Ingestor.on_lines``, 1000-line batches), timed in CPU seconds (the steadier figure on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.generate import events
from llm_log_exporter.aggregate import checkpoint
from llm_log_exporter.aggregate.store import Store
from llm_log_exporter.daemon import Config, build_ingestor, build_usage
from llm_log_exporter.exposition.pages import Pages


def ingest(lines: list[bytes], daily: bool) -> tuple[float, Store]:
    config = Config(files=[], prices="off", tz="UTC")
    store = Store(build_usage(config, daily=daily))
    ingestor = build_ingestor(config, store)
    started = time.process_time()
    for i in range(0, len(lines), 1000):
        ingestor.on_lines("bench.jsonl", lines[i:i + 1000], i + 1, 0)
    return time.process_time() - started, store


def timed(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=300_000)
    ap.add_argument("--days", type=float, default=60)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    spacing = args.days * 86400 / args.n
    start = time.time() - args.days * 86400
    lines = [json.dumps(e, separators=(",", ":")).encode() for e in events(args.n, start=start, spacing=spacing)]
    print(f"{args.n:,} native lines over {args.days:g} days; CPU seconds, medians of {args.runs} runs")
    results = {}
    for daily in (False, True):
        runs = [ingest(lines, daily) for _ in range(args.runs)]
        seconds = statistics.median(r[0] for r in runs)
        results[daily] = (seconds, runs[-1][1])
        print(f"  ingest {'with' if daily else 'without'} per-day sums: {args.n / seconds:,.0f} lines/s")
    overhead = results[True][0] / results[False][0] - 1
    print(f"  per-day sums cost {overhead:+.1%} of ingestion time")
    store = results[True][1]
    store.ready.set()
    daily = store.usage.daily
    assert daily is not None
    sets = [len(day) for day in daily.days.values()]
    print(f"  {len(daily.days)} days kept, {max(sets):,} label sets on the fullest day, {sum(sets):,} records")
    pages = Pages(store, daily, daily.zone, lambda: [])
    page = timed(pages.landing, args.runs)
    api = timed(lambda: pages.api("start=this-month&by=model,tenant&period=day"), args.runs)
    print(f"  landing page: {page * 1000:.1f} ms ({len(pages.landing()):,} bytes); "
          f"/api/v1/usage this month by model,tenant,day: {api * 1000:.1f} ms")
    settings = checkpoint.settings_of(Config(files=[], tz="UTC"))
    with_daily = len(checkpoint.dump(store, [], settings))
    without = len(checkpoint.dump(results[False][1], [], settings))
    print(f"  state file: {without / 1e6:.2f} MB without, {with_daily / 1e6:.2f} MB with the per-day sums")


if __name__ == "__main__":
    main()
