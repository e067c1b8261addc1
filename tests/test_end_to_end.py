"""Real litellm calls → UsageLogger → file → the real daemon following it → exact metrics."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no network; must precede import litellm

import litellm

from llm_log_exporter.callback import UsageLogger
from tests.helpers import ExporterProcess, value
from tests.test_callback import SLOCapture, reset_litellm_callbacks, settle_and_count

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")]


def test_litellm_calls_counted_exactly_by_the_daemon(tmp_path: Path) -> None:
    log = tmp_path / "usage.jsonl"
    reset_litellm_callbacks()
    capture = SLOCapture()
    logger = capture.attach(UsageLogger(log))
    litellm.callbacks = [logger]
    try:
        with ExporterProcess(["--file", str(log), "--poll-interval", "0.2"]) as exp:
            exp.wait_ready()
            ok = litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                    mock_response="hello there", metadata={"tenant_id": "acme"})
            with pytest.raises(litellm.RateLimitError):
                litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                   mock_response="litellm.RateLimitError", metadata={"tenant_id": "acme"})
            stream = litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                        mock_response="streamed answer", stream=True,
                                        stream_options={"include_usage": True}, metadata={"tenant_id": "beta"})
            for _ in stream:
                pass
            events = settle_and_count(log, 3)
            assert ok.choices[0].message.content == "hello there"
            slos = list(capture.slos.values())
            assert len(slos) == 3
            labels = {"provider": "openai", "model": "gpt-4o-mini"}
            samples = exp.wait_value("llm_requests_total", 3, **labels)
            assert value(samples, "llm_requests_total", status="success", tenant_id="acme", **labels) == 1
            assert value(samples, "llm_requests_total", status="failure", tenant_id="acme", **labels) == 1
            assert value(samples, "llm_requests_total", status="success", tenant_id="beta", **labels) == 1
            assert value(samples, "llm_tokens_total", type="input") == sum(s["prompt_tokens"] for s in slos)
            assert value(samples, "llm_tokens_total", type="output") == sum(s["completion_tokens"] for s in slos)
            assert math.isclose(value(samples, "llm_cost_usd_total"), sum(s["response_cost"] for s in slos),
                                rel_tol=1e-12)
            assert value(samples, "llm_request_duration_seconds_count") == 3
            assert value(samples, "llm_time_to_first_token_seconds_count", tenant_id="beta") == 1
            assert math.isclose(value(samples, "llm_request_duration_seconds_sum"),
                                sum(e["duration_s"] for e in events), rel_tol=1e-9)
            assert value(samples, "llm_exporter_lines_total", result="invalid") == 0
            # The stream's stream_start line (pre-call hook) was ended by its request line.
            assert value(samples, "llm_exporter_lines_total", result="parsed") == 4
            assert value(samples, "llm_active_streams") == 0
            assert value(samples, "llm_provider_errors_total", provider="openai", error_type="rate_limit") == 1
            assert value(samples, "llm_rate_limit_hits_total", tenant_id="acme") == 1
            # no cache configured: LiteLLM says cache_hit false for the stream and the failure, yet no cache was
            # consulted, so neither a hit nor a miss is counted
            assert any(s["cache_hit"] is False for s in slos)
            assert not any(name in ("llm_cache_misses_total", "llm_cache_hits_total") and v
                           for (name, _), v in samples.items())
    finally:
        reset_litellm_callbacks()
        logger.close()
