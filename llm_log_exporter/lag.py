"""``llm_exporter_lag_bytes{file}``: bytes written to a followed file and not read yet.

A healthy exporter reads within one poll interval, so the gauge sits at 0 between scrapes;
a value that stays up and grows means the exporter is falling behind its writer (alert on that).
Read from the tailer at scrape time (``fstat`` of the open fd), so it costs nothing per line.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llm_log_exporter.tailer import Tailer


class LagCollector(Collector):
    def __init__(self, tailer: Tailer) -> None:
        self.tailer = tailer

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "llm_exporter_lag_bytes", "Bytes written to a followed file but not read yet.", labels=["file"]
        )
        for path, nbytes in sorted(self.tailer.lag_bytes().items()):
            lag.add_metric([path], nbytes)
        yield lag
