"""Micro-benchmark: per-call overhead of ``UsageLogger.log_success_event`` (target: p99 <= 50 µs).

Not a test. Runs without litellm, on a synthetic kwargs dict shaped like what litellm 1.81.10
passes (a full standard logging object with messages, response and hidden params, plus the
top-level keys). Each call gets a fresh ``litellm_call_id`` so de-duplication does not skip it.

    python benchmarks/bench_callback.py [--calls 20000] [--dir /tmp] [--stdlib-json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_log_exporter.writer import callback as cb
from llm_log_exporter.writer import encode


def synthetic_kwargs() -> dict[str, Any]:
    """A kwargs dict with the keys and nesting of a real sync success call (content made up)."""
    start = time.time()
    usage = {
        "completion_tokens": 20, "prompt_tokens": 10, "total_tokens": 30,
        "completion_tokens_details": {"reasoning_tokens": 0, "text_tokens": 20, "audio_tokens": None},
        "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_tokens": None, "audio_tokens": None},
    }  # fmt: skip
    messages = [{"role": "system", "content": "You are a helpful assistant. " * 20},
                {"role": "user", "content": "say hi " * 50}]  # fmt: skip
    response = {
        "id": "chatcmpl-34497d5a-f7bd-4e31-b704-ad2b34791765", "created": int(start), "model": "gpt-4o-mini",
        "object": "chat.completion",
        "choices": [{"finish_reason": "stop", "index": 0, "message": {"content": "hi " * 100, "role": "assistant"}}],
        "usage": usage,
    }  # fmt: skip
    slo = {
        "id": response["id"], "trace_id": "5003c58c-5e02-4bb4-ae2f-6d9a59b18c49", "call_type": "completion",
        "cache_hit": None, "stream": None, "status": "success",
        "status_fields": {"llm_api_status": "success", "guardrail_status": "not_run"},
        "custom_llm_provider": "openai", "saved_cache_cost": 0.0,
        "startTime": start, "endTime": start + 0.157, "completionStartTime": start + 0.157, "response_time": 0.157,
        "model": "gpt-4o-mini",
        "metadata": {
            "user_api_key_hash": None, "user_api_key_alias": None, "user_api_key_team_id": None,
            "user_api_key_user_id": None, "spend_logs_metadata": None, "requester_metadata": None,
            "usage_object": usage,
        },
        "cache_key": None, "response_cost": 1.35e-05,
        "cost_breakdown": {"total_cost": 1.35e-05, "input_cost": 1.5e-06, "output_cost": 1.2e-05},
        "total_tokens": 30, "prompt_tokens": 10, "completion_tokens": 20, "request_tags": [],
        "end_user": "", "api_base": "", "model_group": "", "model_id": "", "requester_ip_address": None,
        "user_agent": None, "messages": messages, "response": response, "model_parameters": {},
        "hidden_params": {"model_id": None, "api_base": "https://api.openai.com", "response_cost": 1.35e-05,
                          "additional_headers": {}, "litellm_model_name": "gpt-4o-mini"},
        "model_map_information": {"model_map_key": "gpt-4o-mini", "model_map_value": {"max_tokens": 16384}},
        "error_str": None,
        "error_information": {"error_code": "", "error_class": "", "llm_provider": "", "traceback": "",
                              "error_message": ""},
        "response_cost_failure_debug_info": None, "guardrail_information": None,
        "standard_built_in_tools_params": {"web_search_options": None, "file_search": None},
    }  # fmt: skip
    return {
        "model": "gpt-4o-mini", "messages": messages, "optional_params": {"extra_body": {}},
        "litellm_params": {"metadata": {"tenant_id": "acme", "hidden_params": {}}, "acompletion": False},
        "start_time": dt.datetime.now(), "end_time": dt.datetime.now(), "stream": False,
        "user": None, "call_type": "completion", "litellm_call_id": "x", "custom_llm_provider": "openai",
        "response_cost": 1.35e-05, "cache_hit": None, "standard_logging_object": slo,
        "complete_streaming_response": response, "log_event_type": "post_api_call",
    }  # fmt: skip


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def measure(calls: int = 20_000, directory: str | None = None) -> dict[str, float]:
    """Per-call µs percentiles of ``log_success_event`` writing to a real file, plus its components."""
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        path = os.path.join(tmp, "usage.jsonl")
        logger = cb.UsageLogger(path)
        kwargs = synthetic_kwargs()
        start, end = kwargs["start_time"], kwargs["end_time"]
        call = logger.log_success_event
        clock = time.perf_counter_ns
        for i in range(2_000):  # warm-up: file opened, caches hot
            kwargs["litellm_call_id"] = f"warm-{i}"
            call(kwargs, None, start, end)

        samples: list[float] = []
        for i in range(calls):
            kwargs["litellm_call_id"] = f"call-{i}"
            t0 = clock()
            call(kwargs, None, start, end)
            samples.append((clock() - t0) / 1000)

        # components, for the record
        n = 5_000
        t0 = clock()
        for _ in range(n):
            os.stat(path)
        stat_us = (clock() - t0) / 1000 / n
        t0 = clock()
        for _ in range(n):
            event = cb.build_request_event(kwargs, None, start, end, status="success")
        build_us = (clock() - t0) / 1000 / n
        t0 = clock()
        for _ in range(n):
            cb.encode_event(event)
        encode_us = (clock() - t0) / 1000 / n

        assert logger.errors == 0, logger.errors
        with open(path, "rb") as f:
            lines = sum(1 for _ in f)
        logger.close()
    assert lines == calls + 2_000, (lines, calls)
    samples.sort()
    return {
        "p50": percentile(samples, 0.50), "p90": percentile(samples, 0.90), "p99": percentile(samples, 0.99),
        "p999": percentile(samples, 0.999), "max": samples[-1], "mean": statistics.fmean(samples),
        "stat": stat_us, "build": build_us, "encode": encode_us, "lines": lines,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--dir", default=None, help="directory for the log file (default: a temp dir)")
    parser.add_argument("--stdlib-json", action="store_true", help="force the json fallback encoder")
    args = parser.parse_args()
    if args.stdlib_json:
        cb.encode_event = encode._encode_stdlib
    r = measure(args.calls, args.dir)
    encoder = "json (stdlib)" if cb.encode_event is encode._encode_stdlib else "orjson"
    print(f"UsageLogger.log_success_event, {args.calls} calls, encoder={encoder}")
    print(
        f"  per call µs: p50={r['p50']:.1f}  p90={r['p90']:.1f}  p99={r['p99']:.1f}  p99.9={r['p999']:.1f}  "
        f"max={r['max']:.1f}  mean={r['mean']:.1f}"
    )
    print(f"  components µs (mean): os.stat={r['stat']:.2f}  build={r['build']:.2f}  encode={r['encode']:.2f}")
    print(f"  lines written: {r['lines']} (expected {args.calls + 2_000})")


if __name__ == "__main__":
    main()
