"""llm_exporter_lag_bytes: what the writer has written and the exporter has not read yet."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.exposition import generate_latest

from llm_log_exporter.daemon import Config, Exporter
from tests.helpers import parse_exposition, value

LINE = b'{"v": 1, "event": "request", "model": "m", "prompt_tokens": 1}\n'


def test_lag_is_unread_bytes_per_file(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(LINE * 3)
    b.write_bytes(LINE)
    exporter = Exporter(Config(files=[str(a), str(b)], poll=True))
    try:
        exporter.tailer.poll_once()
        exporter.store.ready.set()
        scrape = lambda: parse_exposition(generate_latest(exporter.registry).decode())  # noqa: E731
        s = scrape()
        assert value(s, "llm_exporter_lag_bytes", file=str(a)) == 0
        assert value(s, "llm_exporter_lag_bytes", file=str(b)) == 0
        with open(a, "ab") as f:  # written, not yet polled: the backlog shows
            f.write(LINE * 2)
        s = scrape()
        assert value(s, "llm_exporter_lag_bytes", file=str(a)) == 2 * len(LINE)
        assert value(s, "llm_exporter_lag_bytes", file=str(b)) == 0
        exporter.tailer.poll_once()
        assert value(scrape(), "llm_exporter_lag_bytes", file=str(a)) == 0
        assert value(scrape(), "llm_requests_total") == 6
    finally:
        exporter.tailer.close()
