"""Shared fixtures: a usage log path per test, and one real Prometheus server per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.prom import PrometheusServer


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """Where a test's usage log goes (not created: tests decide what it holds)."""
    return tmp_path / "usage.jsonl"


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    # Exemplar storage on, so tests can read exemplars back (query_exemplars); nothing else changes with it.
    server = PrometheusServer(Path(tmp_path_factory.mktemp("prometheus")),
                              extra_args=["--enable-feature=exemplar-storage"])
    yield server
    server.stop()
