"""Per-line cost of the native parser: the callback's lines and other writers' lines, beside the bare
JSON decoders (orjson, and msgspec's typed decoding when it is installed).

    python benchmarks/bench_parse.py [-n 200000]

The question it answers: does a typed decoder (msgspec straight into a struct with bounds) pay for
itself here? It prints µs per line (CPU, best of 3) for: orjson.loads alone, the exporter's
``parse_line`` (orjson + the fast path), and msgspec's typed decode. The replay spends the rest of its
time on ordering, aggregation and samples, so the gain is weighed against the whole replay.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate

from llm_log_exporter.parsers import get_parser, parse_line


def gateway_lines(n: int) -> list[bytes]:
    """Lines another writer would write: a subset of the keys, RFC 3339 ts, failures with an error type."""
    out = []
    for ev in generate.events(n, seed=5):
        line: dict[str, Any] = {"event": "request", "v": 1, "model": ev["model"], "tenant_id": ev["tenant_id"],
                                "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ev["ts"])),
                                "prompt_tokens": ev["prompt_tokens"], "completion_tokens": ev["completion_tokens"],
                                "cost_usd": ev["cost_usd"], "status": ev["status"]}
        if ev["error_type"]:
            line["error_type"] = ev["error_type"]
        out.append(orjson.dumps(line))
    return out


def best(fn: Any, lines: list[bytes]) -> float:
    times = []
    for _ in range(3):
        start = time.process_time()
        for line in lines:
            fn(line)
        times.append(time.process_time() - start)
    return min(times) / len(lines) * 1e6


try:
    import msgspec
    from msgspec import Meta
except ImportError:  # the typed column is left out
    msgspec = None
else:
    Tokens = Annotated[int, Meta(ge=0, le=1 << 53)]
    Seconds = Annotated[float, Meta(ge=0, le=1e7)]
    Cost = Annotated[float, Meta(ge=0, le=1e9)]
    Model = Annotated[str, Meta(min_length=1)]

    class Line(msgspec.Struct):
        v: Literal[1]
        model: Model
        event: Literal["request"] = "request"
        ts: float | str | None = None
        call_id: str | None = None
        provider: str | None = None
        tenant_id: str | None = None
        status: Literal["success", "failure"] = "success"
        error_type: str | None = None
        duration_s: Seconds | None = None
        ttft_s: Seconds | None = None
        stream: bool | None = False
        prompt_tokens: Tokens | None = None
        completion_tokens: Tokens | None = None
        total_tokens: Tokens | None = None
        cached_tokens: Tokens | None = None
        cache_write_tokens: Tokens | None = None
        reasoning_tokens: Tokens | None = None
        cost_usd: Cost | None = None
        cache_hit: bool | None = None


def typed_decoder() -> Any:
    return msgspec.json.Decoder(Line).decode if msgspec is not None else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=200_000)
    args = parser.parse_args()
    parse = get_parser("auto")
    cases = {"callback lines (all keys)": [orjson.dumps(ev) for ev in generate.events(args.n)],
             "other writers (subset, RFC 3339 ts)": gateway_lines(args.n)}
    typed = typed_decoder()
    print(f"{'µs per line (CPU)':<38} {'orjson':>8} {'parse_line':>11} {'msgspec typed':>14}")
    for name, lines in cases.items():
        bare = best(orjson.loads, lines)
        ours = best(lambda line: parse_line(parse, line), lines)
        other = f"{best(typed, lines):14.2f}" if typed else f"{'n/a':>14}"
        print(f"{name:<38} {bare:8.2f} {ours:11.2f} {other}")


if __name__ == "__main__":
    main()
