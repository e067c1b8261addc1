"""Byte-for-byte goldens: ``replay`` output for the bundled history fixtures and ``/metrics`` for the
bundled sample, as the exporter produced them before the package was reorganised.

A refactoring must not move a byte of either. When a change is *meant* to alter the output, regenerate
with ``LLM_LOG_EXPORTER_UPDATE_GOLDEN=1 pytest tests/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, ROOT
from tests.history import HISTORY, run_cli

GOLDEN = FIXTURES / "golden"
UPDATE = os.environ.get("LLM_LOG_EXPORTER_UPDATE_GOLDEN") == "1"
PRICES = str(FIXTURES / "prices.json")

# Fixed --end: the backfill depends on nothing but the inputs and the options.
REPLAYS = {
    "history-default": [str(HISTORY / "gateway-a.jsonl"), str(HISTORY / "gateway-b.jsonl.gz"),
                        "--budgets", str(HISTORY / "budgets.toml"), "--end", "2025-07-01T04:05:00Z"],
    "history-step5m-aigateway": [str(HISTORY / "gateway-b.jsonl.gz"), str(HISTORY / "gateway-a.jsonl"),
                                 "--step", "5m", "--namespace", "aigateway", "--label", "job=llm",
                                 "--label", "instance=gw-1:9464", "--start", "2025-06-30T23:00:00Z",
                                 "--end", "2025-07-01T04:05:00Z"],
    "litellm-slo": [str(FIXTURES / "litellm-1.81.10_slo.jsonl"), "--end", "2026-11-23T13:20:00Z"],
    "aider": [str(FIXTURES / "aider-0.86.2_usage.jsonl"), str(FIXTURES / "aider-0.86.2_analytics.jsonl"),
              "--end", "2026-11-23T13:40:00Z"],
    "sample": [str(FIXTURES / "sample.jsonl"), "--end", "2026-11-25T10:30:00Z", "--step", "5m"],
}


def _compare(name: str, data: bytes) -> None:
    """``data`` must equal the golden ``name`` (kept gzip-compressed: the 60 s backfill is megabytes)."""
    path = GOLDEN / f"{name}.gz"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(data, mtime=0))
        return
    expected = gzip.decompress(path.read_bytes())
    if data != expected:
        pairs = zip(expected.splitlines(), data.splitlines(), strict=False)
        diff = [(i, a, b) for i, (a, b) in enumerate(pairs) if a != b][:5]
        raise AssertionError(f"{name} differs from its golden ({len(expected)} vs {len(data)} bytes); first lines "
                             f"that differ: {diff}")


@pytest.mark.parametrize("name", sorted(REPLAYS))
def test_replay_output_is_byte_identical(name: str, tmp_path: Path) -> None:
    out = tmp_path / "out.om"
    proc = run_cli(["replay", *REPLAYS[name], "--prices", PRICES, "-q", "-o", str(out)])
    assert proc.returncode == 0, proc.stderr.decode()
    _compare(f"replay-{name}.om", out.read_bytes())


_VARYING = re.compile(rb"^(process_|python_|llm_exporter_build_info|# (HELP|TYPE) (process_|python_))")


def _metrics(files: list[Path], accept: str, **config: object) -> bytes:
    """One in-process read of ``files`` and one scrape body, with the machine-dependent lines left out
    (process and Python info, the build info) and the followed paths made relative to the checkout."""
    from llm_log_exporter.daemon import Config, Exporter
    from llm_log_exporter.exposition.render import Renderer, negotiate

    exporter = Exporter(Config(files=[str(p) for p in files], poll=True, prices=PRICES, **config))  # type: ignore[arg-type]
    try:
        exporter.tailer.poll_once()
        exporter.store.ready.set()
        body = Renderer().render(exporter.registry, negotiate(accept))  # what the server sends
    finally:
        exporter.tailer.close()
    lines = [line for line in body.splitlines(keepends=True) if not _VARYING.match(line)]
    return b"".join(lines).replace(str(ROOT).encode() + b"/", b"")


ACCEPTS = {
    "text": "text/plain;version=0.0.4",
    "openmetrics": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                   "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
}


@pytest.mark.parametrize("fmt", sorted(ACCEPTS))
def test_metrics_for_the_bundled_sample_are_byte_identical(fmt: str) -> None:
    body = _metrics([FIXTURES / "sample.jsonl"], ACCEPTS[fmt])
    _compare(f"metrics-sample.{fmt}", body)


@pytest.mark.parametrize("fmt", sorted(ACCEPTS))
def test_metrics_for_the_gateway_history_are_byte_identical(fmt: str) -> None:
    body = _metrics([HISTORY / "gateway-a.jsonl"], ACCEPTS[fmt], budgets=str(HISTORY / "budgets.toml"))
    _compare(f"metrics-history.{fmt}", body)
