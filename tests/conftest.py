"""Shared fixtures: a usage log path per test, one real Prometheus server and one container image per test
session. Tests that need the image run last, so the image that scripts/test.sh starts making in the background is
ready by then."""

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


@pytest.fixture(scope="session")
def container_image() -> object:
    """The Dockerfile built with podman once per session, or ahead of it (tests/containers.py)."""
    from tests.containers import Engine, session_image

    return session_image(Engine())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Container tests last (stable order otherwise)."""
    items.sort(key=lambda item: "container_image" in getattr(item, "fixturenames", ()))
