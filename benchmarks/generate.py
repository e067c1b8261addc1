"""Deterministic generator of realistic schema-v1 usage lines.

20 models over 5 providers, 50 tenants with a skewed (Zipf-like) share, 2% failures, 10% streamed
calls; the same seed always gives the same bytes, so benchmark runs compare like with like.

    python benchmarks/generate.py -n 1000000 -o /tmp/usage.jsonl
    python benchmarks/generate.py --format litellm -n 100000 -o /tmp/litellm.jsonl
    python benchmarks/generate.py -n 450000 --days 90 --tenants 24 --models 8 -o /tmp/90d.jsonl

``--format litellm`` writes LiteLLM StandardLoggingPayload lines (~5 KB each) built from the five
real payloads in ``litellm-1.109.1_standard_logging_object.trimmed.jsonl`` (success, 500, 429, stream,
async), with models, tenants (``tenant:`` request tags), times, tokens and costs varied like the native
lines and made-up message text (never real prompts) sized to a realistic ~5 KB line.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
from collections.abc import Iterator
from pathlib import Path

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


def pick_models(count: int) -> list[tuple[str, str]]:
    """``count`` models spread over the providers (all 20 by default)."""
    count = min(count, len(MODELS))
    return [MODELS[i * len(MODELS) // count] for i in range(count)]


def events(n: int, seed: int = 42, start: float = START_TS, spacing: float = 0.05, tenants: int = 50,
           models: int = 20) -> Iterator[dict]:
    """``n`` request lines ``spacing`` seconds apart from ``start``, over ``tenants`` × ``models``."""
    rng = random.Random(seed)
    chosen = pick_models(models)
    names = rng.choices(TENANTS[:tenants], TENANT_WEIGHTS[:tenants], k=min(n, 100_000))
    for i in range(n):
        provider, model = chosen[rng.randrange(len(chosen))]
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
            "tenant_id": names[i % len(names)],
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


LITELLM_SAMPLES = Path(__file__).resolve().parent / "litellm-1.109.1_standard_logging_object.trimmed.jsonl"
LITELLM_LINE_BYTES = 5_000


def litellm_payloads(n: int, seed: int = 42) -> Iterator[dict]:
    """StandardLoggingPayload dicts carrying the same usage as ``events(n, seed)``."""
    templates = [json.loads(line) for line in LITELLM_SAMPLES.read_text().splitlines()]
    success = [t for t in templates if t["status"] == "success"]
    failures = [t for t in templates if t["status"] != "success"]
    rng = random.Random(seed + 1)
    for i, ev in enumerate(events(n, seed)):
        ok = ev["status"] == "success"
        slo = copy.deepcopy(success[i % len(success)] if ok else failures[i % len(failures)])
        start = ev["ts"] - ev["duration_s"]
        slo.update(
            id=f"chatcmpl-{seed}-{i}", litellm_call_id=ev["call_id"], trace_id=f"trace-{seed}-{i}",
            model=ev["model"], custom_llm_provider=ev["provider"], startTime=start, endTime=ev["ts"],
            completionStartTime=start + (ev["ttft_s"] or ev["duration_s"]), response_time=ev["duration_s"],
            stream=ev["stream"], prompt_tokens=ev["prompt_tokens"], completion_tokens=ev["completion_tokens"],
            total_tokens=ev["total_tokens"], response_cost=ev["cost_usd"] or 0.0,
            request_tags=[f"tenant:{ev['tenant_id']}"], cache_hit=ev["cache_hit"],
        )  # fmt: skip
        usage = {"completion_tokens": ev["completion_tokens"], "prompt_tokens": ev["prompt_tokens"],
                 "total_tokens": ev["total_tokens"], "completion_tokens_details": None,
                 "prompt_tokens_details": {"cached_tokens": ev["cached_tokens"]}}  # fmt: skip
        slo["metadata"]["usage_object"] = usage
        if isinstance(slo.get("response"), dict) and "usage" in slo["response"]:
            slo["response"]["usage"] = usage
            slo["response"]["model"] = ev["model"]
        size = len(json.dumps(slo, separators=(",", ":")))
        filler = max(0, LITELLM_LINE_BYTES - size - 40 + rng.randint(-400, 400))
        slo["messages"] = [{"role": "user", "content": "lorem ipsum " * (filler // 12)}]
        yield slo


def write(path: str, n: int, seed: int = 42, fmt: str = "native", **shape: object) -> None:
    """``shape``: ``start``, ``spacing``, ``tenants``, ``models`` of ``events`` (native lines)."""
    source = litellm_payloads(n, seed) if fmt == "litellm" else events(n, seed, **shape)  # type: ignore[arg-type]
    with open(path, "w", encoding="utf-8") as out:
        for event in source:
            out.write(json.dumps(event, separators=(",", ":")) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1_000_000, help="number of lines")
    parser.add_argument("-o", "--output", default="-", help="output file (- for stdout)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--format", choices=["native", "litellm"], default="native")
    parser.add_argument("--days", type=float, help="spread the lines evenly over this many days (native)")
    parser.add_argument("--start", type=float, default=START_TS, help="epoch seconds of the first line")
    parser.add_argument("--tenants", type=int, default=50, help="distinct tenants (at most 50)")
    parser.add_argument("--models", type=int, default=20, help="distinct models (at most 20)")
    args = parser.parse_args()
    shape = {"start": args.start, "tenants": args.tenants, "models": args.models}
    if args.days:
        shape["spacing"] = args.days * 86400 / args.n
    write("/dev/stdout" if args.output == "-" else args.output, args.n, args.seed, args.format, **shape)


if __name__ == "__main__":
    main()
