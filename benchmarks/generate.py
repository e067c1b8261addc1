"""Deterministic generator of realistic schema-v1 usage lines.

20 models over 5 providers, 50 tenants with a skewed (Zipf-like) share, 2% failures, 10% streamed
calls; the same seed always gives the same bytes, so benchmark runs compare like with like.

    python benchmarks/generate.py -n 1000000 -o /tmp/usage.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator

PROVIDERS = {
    "openai": ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini"],
    "anthropic": ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1", "claude-3-5-haiku"],
    "gemini": ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.0-flash", "gemini-1.5-pro"],
    "mistral": ["mistral-large", "mistral-small", "codestral"],
    "deepseek": ["deepseek-chat", "deepseek-reasoner", "deepseek-coder", "deepseek-v3"],
}
MODELS = [(provider, model) for provider, models in PROVIDERS.items() for model in models]
TENANTS = [f"tenant-{i:02d}" for i in range(50)]
TENANT_WEIGHTS = [1.0 / (i + 1) for i in range(50)]
ERRORS = ["rate_limit", "timeout", "server_error", "bad_request", "context_window"]
START_TS = 1_795_000_000.0


def events(n: int, seed: int = 42, start: float = START_TS, spacing: float = 0.05) -> Iterator[dict]:
    rng = random.Random(seed)
    tenants = rng.choices(TENANTS, TENANT_WEIGHTS, k=min(n, 100_000))
    for i in range(n):
        provider, model = MODELS[rng.randrange(len(MODELS))]
        failed = rng.random() < 0.02
        stream = rng.random() < 0.1
        prompt = 0 if failed else rng.randint(10, 8000)
        completion = 0 if failed else rng.randint(1, 2000)
        cached = rng.randint(0, prompt) if prompt and rng.random() < 0.3 else 0
        reasoning = rng.randint(0, completion) if model.startswith(("o3", "deepseek-r")) else 0
        duration = round(rng.lognormvariate(0.3, 0.9), 6)
        cost = None if rng.random() < 0.01 else round(prompt * 2.5e-6 + completion * 1e-5, 9)
        yield {
            "v": 1,
            "event": "request",
            "ts": round(start + i * spacing, 3),
            "call_id": f"call-{seed}-{i}",
            "model": model,
            "provider": provider,
            "tenant_id": tenants[i % len(tenants)],
            "status": "failure" if failed else "success",
            "error_type": rng.choice(ERRORS) if failed else None,
            "duration_s": duration,
            "ttft_s": round(duration * rng.uniform(0.05, 0.5), 6) if stream else None,
            "stream": stream,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "cached_tokens": cached,
            "cache_write_tokens": 0,
            "reasoning_tokens": reasoning,
            "cost_usd": cost,
            "cache_hit": None if rng.random() < 0.5 else rng.random() < 0.2,
        }


def write(path: str, n: int, seed: int = 42) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for event in events(n, seed):
            out.write(json.dumps(event, separators=(",", ":")) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1_000_000, help="number of lines")
    parser.add_argument("-o", "--output", default="-", help="output file (- for stdout)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if args.output == "-":
        for event in events(args.n, args.seed):
            sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    else:
        write(args.output, args.n, args.seed)


if __name__ == "__main__":
    main()
