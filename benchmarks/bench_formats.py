"""Throughput of each input format through the exporter's real read path, and the price step.

    python benchmarks/bench_formats.py [-n 200000]

Builds one file per format by repeating the test fixtures' real lines, reads each once through
tailer → parser → (prices) → metrics as the daemon's initial read does, and prints lines/s beside
the bare orjson.loads limit for the same file (SLO lines are ~5 KB, so JSON decoding dominates).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llm_log_exporter.daemon import Config, Exporter  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
SOURCES = {
    "native": "sample.jsonl",
    "litellm": "litellm-1.81.10_slo.jsonl",
    "aider": "aider-0.86.2_analytics.jsonl",
    "openai_batch": "openai-batch_output.jsonl",
    "anthropic_batch": "anthropic-batch_results.jsonl",
}


def build(path: Path, source: Path, n: int) -> None:
    lines = source.read_bytes().splitlines(keepends=True)
    with path.open("wb") as f:
        for i in range(n):
            f.write(lines[i % len(lines)])


def exporter_rate(path: Path, fmt: str, prices: str | None) -> float:
    exporter = Exporter(Config(files=[str(path)], poll=True, format=fmt, prices=prices))
    started = time.perf_counter()
    exporter.tailer.poll_once()
    elapsed = time.perf_counter() - started
    exporter.tailer.close()
    lines = sum(exporter.store.files[str(path)].lines.values())
    return lines / elapsed


def orjson_rate(path: Path) -> float:
    started = time.perf_counter()
    n = 0
    with path.open("rb") as f:
        for line in f:
            orjson.loads(line)
            n += 1
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'format':<16}{'bytes/line':>11}{'orjson lines/s':>16}{'exporter lines/s':>18}{'auto':>12}")
        for fmt, name in SOURCES.items():
            path = Path(tmp) / f"{fmt}.jsonl"
            build(path, FIXTURES / name, args.n)
            size = path.stat().st_size / args.n
            print(f"{fmt:<16}{size:>11.0f}{orjson_rate(path):>16,.0f}{exporter_rate(path, fmt, None):>18,.0f}"
                  f"{exporter_rate(path, 'auto', None):>12,.0f}")
        # the price step: native lines without cost_usd, priced from litellm's bundled table
        path = Path(tmp) / "unpriced.jsonl"
        with path.open("wb") as f:
            for i in range(args.n):
                f.write(orjson.dumps({"v": 1, "model": ["gpt-4o-mini", "claude-sonnet-4-5", "o3-mini"][i % 3],
                                      "provider": "openai", "prompt_tokens": 1000 + i % 7, "completion_tokens": 50,
                                      "cached_tokens": 100}) + b"\n")
        started = time.perf_counter()
        Exporter(Config(files=[str(path)], poll=True))  # includes loading the bundled table
        load = time.perf_counter() - started
        print(f"\nprice table load (litellm bundled, incl. exporter set-up): {load * 1000:.0f} ms")
        print(f"native lines without cost, priced:   {exporter_rate(path, 'native', None):>12,.0f} lines/s")
        print(f"native lines without cost, --prices off: {exporter_rate(path, 'native', 'off'):>8,.0f} lines/s")


if __name__ == "__main__":
    main()
