"""Cost of a --state-file save and restore: size, dump + atomic write, parse, by number of series/files.

    python benchmarks/bench_state.py [--series 2000] [--files 50] [--runs 5]

A save runs in the reading thread every --state-interval seconds, so its time is a pause in reading.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llm_log_exporter.aggregate import checkpoint as state
from llm_log_exporter.daemon import Config, Exporter
from llm_log_exporter.events import Request


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--files", type=int, default=50)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i in range(args.files):
            p = Path(d) / f"f{i}.jsonl"
            p.write_bytes(b'{"v":1,"model":"m"}\n' * 100)
            paths.append(str(p))
        config = Config(files=[f"{d}/*.jsonl"], poll=True, state_file=f"{d}/state.json")
        exp = Exporter(config)
        exp.tailer.poll_once()
        for i in range(args.series):
            exp.store.usage.request(Request(1.0, "", f"model-{i % 400}", f"prov-{i % 5}", f"tenant-{i // 400}",
                                            "success", None, 0.7, None, False, 100, 20, 0, 0, 0, 0.001, None))
        saves, parses = [], []
        settings = state.settings_of(config)
        for _ in range(args.runs):
            exp.checkpointer._last_data = b""  # force a real write
            t = time.perf_counter()
            assert exp.save_state()
            saves.append(time.perf_counter() - t)
            data = Path(config.state_file).read_bytes()
            t = time.perf_counter()
            state.parse(data, settings, exp._new_store)
            parses.append(time.perf_counter() - t)
        exp.tailer.close()
        print(f"series={len(exp.store.usage.records)} files={args.files} state={len(data) / 1024:.0f} KiB")
        print(f"save (dump + fsync'd atomic write): median {statistics.median(saves) * 1000:.1f} ms")
        print(f"restore parse:                      median {statistics.median(parses) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
