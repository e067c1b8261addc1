"""Scrape-time self-metrics of the tailer and of the state file: how far behind, what is watched, saves.

Kept apart from ``collector.py`` because these values live in the tailer (fstat of open fds) and the
checkpointer, not in the store.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llm_log_exporter.collector import SELF_PREFIX
from llm_log_exporter.state import ABSENT, CORRUPT, FOREIGN, RESTORED, Checkpointer
from llm_log_exporter.tailer import Tailer


class TailCollector(Collector):
    def __init__(self, tailer: Tailer, checkpointer: Checkpointer | None = None) -> None:
        self.tailer = tailer
        self.checkpointer = checkpointer

    def collect(self) -> Iterator[Metric]:
        p = SELF_PREFIX
        lag_by_file = self.tailer.lag_bytes()
        lag = GaugeMetricFamily(f"{p}_lag_bytes", "Bytes written to a followed file but not read yet "
                                "(size minus read offset).", labels=["file"])
        for path, nbytes in sorted(lag_by_file.items()):
            lag.add_metric([path], nbytes)
        watched = GaugeMetricFamily(f"{p}_watched_files", "Files currently followed (open).")
        watched.add_metric([], len(lag_by_file))
        yield from (lag, watched)
        cp = self.checkpointer
        if cp is None:
            return
        writes = CounterMetricFamily(f"{p}_state_saves", "Saves of the --state-file by result.", labels=["result"])
        for result, count in cp.writes.items():
            writes.add_metric([result], count)
        loaded = GaugeMetricFamily(
            f"{p}_state_load_info", "How the --state-file was used at start-up (1 for the outcome).",
            labels=["result"],
        )
        for result in (RESTORED, ABSENT, CORRUPT, FOREIGN):
            loaded.add_metric([result], 1.0 if cp.load_result == result else 0.0)
        yield from (writes, loaded)
        if cp.last_write is not None:
            last = GaugeMetricFamily(f"{p}_state_last_save_timestamp_seconds",
                                     "Time of the last successful state save (epoch seconds).")
            last.add_metric([], cp.last_write)
            yield last
