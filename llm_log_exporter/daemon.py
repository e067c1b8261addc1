"""The one place that composes the stages: file → tailer → parser → aggregation → exposition (HTTP).

The daemon and the history commands (replay, report) build their counting here from the same ``Config``,
so history and live data count alike; no stage imports this module.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from prometheus_client import disable_created_metrics
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from llm_log_exporter.aggregate import checkpoint
from llm_log_exporter.aggregate.breaker import Breakers
from llm_log_exporter.aggregate.budgets import Budgets, load_budgets
from llm_log_exporter.aggregate.calls import DEFAULT_RETRY_WINDOW
from llm_log_exporter.aggregate.daily import DEFAULT_DAYS, DEFAULT_LABEL_SETS, Daily
from llm_log_exporter.aggregate.ingest import DEFAULT_MAX_FUTURE_SKEW, Ingestor
from llm_log_exporter.aggregate.periods import LOCAL, get_zone
from llm_log_exporter.aggregate.prices import load_prices
from llm_log_exporter.aggregate.store import Store
from llm_log_exporter.aggregate.usage import DEFAULT_BUCKETS, DEFAULT_TPOT_BUCKETS, DEFAULT_TTFT_BUCKETS, Usage
from llm_log_exporter.exposition.collector import (
    FamilyCollector,
    Guarded,
    ScrapeErrors,
    checkpoint_owner,
    scrape_owner,
    store_owners,
    tailer_owner,
)
from llm_log_exporter.exposition.heap import HeapFreezer
from llm_log_exporter.exposition.pages import Pages, file_rows
from llm_log_exporter.exposition.server import MetricsServer, http_owner
from llm_log_exporter.history.replay import ReplayOptions, ReplayResult, replay
from llm_log_exporter.history.sources import Source
from llm_log_exporter.parsers import get_parser
from llm_log_exporter.parsers.options import DEFAULT_TENANT_FROM, ParserOptions
from llm_log_exporter.tailer import FOLLOWED_LOGGED, Tailer, default_max_open_files
from llm_log_exporter.tailing.discovery import FOLLOWING, MISSING, NOT_A_FILE, UNREADABLE, probe

log = logging.getLogger("llm_log_exporter")


@dataclass
class Config:
    files: Sequence[str]
    host: str = "localhost"
    port: int = 9464
    namespace: str = "llm"
    naming: str = "llm"  # llm: our family names; otel: the OpenTelemetry GenAI names where they exist
    format: str = "auto"
    exclude: Sequence[str] = ()
    from_end: bool = False
    poll: bool = False
    poll_interval: float = 1.0
    max_line_bytes: int = 1 << 20
    buckets: Sequence[float] = field(default_factory=lambda: DEFAULT_BUCKETS)
    ttft_buckets: Sequence[float] = field(default_factory=lambda: DEFAULT_TTFT_BUCKETS)
    tpot_buckets: Sequence[float] = field(default_factory=lambda: DEFAULT_TPOT_BUCKETS)
    max_tenants: int = 1000
    max_models: int = 500
    max_providers: int = 100
    budgets: str | None = None
    stream_timeout: float = 600.0
    max_streams: int = 10_000
    retry_window: float = DEFAULT_RETRY_WINDOW
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0
    derived_breaker: bool = True
    max_label_length: int = 128
    max_label_sets: int = 10_000
    extra_label: Sequence[str] = ()  # attribution labels exported on the usage families (--extra-label)
    max_extra_label_values: int = 100
    web_config_file: str | None = None
    web_max_connections: int = 64
    web_read_timeout: float = 10.0
    web_write_timeout: float = 30.0

    prices: str | None = None  # price table file; None: litellm's bundled one; "off": none
    tenant_from: Sequence[str] = DEFAULT_TENANT_FROM
    max_future_skew: float = DEFAULT_MAX_FUTURE_SKEW
    max_open_files: int | None = None  # None: half the soft RLIMIT_NOFILE (default_max_open_files)
    require_files: bool = False
    state_file: str | None = None
    state_interval: float = 5.0
    shutdown_delay: float = 0.0
    scrape_catch_up: float = 0.1  # seconds a scrape waits for the tailer to read what was written before it
    tz: str = LOCAL  # IANA zone of days, weeks and months (budgets, the landing page); "local": the machine's
    daily_days: int = DEFAULT_DAYS
    daily_label_sets: int = DEFAULT_LABEL_SETS


def build_usage(config: Config, daily: bool = False) -> Usage:
    """The aggregation state for a config: shared by the daemon and replay, so both count alike; ``daily``
    adds the per-day sums of the landing page (the daemon's)."""
    zone = get_zone(config.tz)
    budgets = Budgets(*load_budgets(config.budgets), zone=zone) if config.budgets else Budgets(zone=zone)
    return Usage(
        buckets=config.buckets,
        ttft_buckets=config.ttft_buckets,
        tpot_buckets=config.tpot_buckets,
        max_tenants=config.max_tenants,
        max_models=config.max_models,
        max_providers=config.max_providers,
        breakers=Breakers(config.breaker_failures, config.breaker_cooldown, config.derived_breaker),
        budgets=budgets,
        stream_timeout=config.stream_timeout,
        max_streams=config.max_streams,
        max_label_length=config.max_label_length,
        max_label_sets=config.max_label_sets,
        daily=Daily(zone, config.daily_days, config.daily_label_sets, config.buckets) if daily else None,
        retry_window=config.retry_window,
        extra_labels=tuple(config.extra_label),
        max_extra_label_values=config.max_extra_label_values,
        naming=config.naming,
    )


def build_ingestor(config: Config, store: Store) -> Ingestor:
    """Lines → events → store for a config: parser options and prices included; daemon and replay share it."""
    parser = get_parser(config.format, ParserOptions(tenant_from=tuple(config.tenant_from),
                                                     label_keys=tuple(config.extra_label)))
    return Ingestor(store, parser, load_prices(config.prices), config.max_future_skew)


def build_history(config: Config) -> tuple[Store, Ingestor, FamilyCollector]:
    """What ``replay`` and ``report`` count with: the daemon's store, ingestor and usage families."""
    store = Store(build_usage(config))
    collector = FamilyCollector(store_owners(store), config.namespace, naming=config.naming)
    return store, build_ingestor(config, store), collector


def replay_history(config: Config, sources: Sequence[Source], out: BinaryIO, options: ReplayOptions,
                   progress: Callable[[int, int], None] | None = None, now: float | None = None) -> ReplayResult:
    """``replay`` of ``sources`` into ``out``, counted by the daemon's code for ``config``."""
    store, ingestor, collector = build_history(config)
    return replay(store, ingestor, collector, sources, out, options, config.max_line_bytes, progress, now)


class FilesUnusable(ValueError):
    """``--require-files`` and a ``--file`` that yields nothing to read."""


def require_files(patterns: Sequence[str], exclude: Sequence[str]) -> None:
    """Raise ``FilesUnusable`` naming every pattern that matches no readable regular file now."""
    bad = {pattern: found for pattern, found in probe(patterns, exclude).items() if found[0] != FOLLOWING}
    if bad:
        why = {MISSING: "matches no file", NOT_A_FILE: "is not a regular file (a directory?)",
               UNREADABLE: "cannot be read"}
        raise FilesUnusable("; ".join(f"--file {pattern} {why[state]}" + (f" ({detail})" if detail else "")
                                      for pattern, (state, detail) in bad.items()))


class Exporter:
    """One exporter instance; ``serve`` blocks until ``stop`` is called (or a signal arrives)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        if config.require_files:
            require_files(config.files, config.exclude)
        self.store = self._new_store()
        settings = checkpoint.settings_of(config)
        load_result, positions, repairs = checkpoint.ABSENT, [], {}
        if config.state_file:
            load_result, restored, positions, repairs = checkpoint.load(
                config.state_file, settings, self._new_store, time.time() + config.max_future_skew)
            self.store = restored or self.store
        self.ingestor = build_ingestor(config, self.store)
        self.tailer = Tailer(
            config.files,
            self.ingestor,
            from_end=config.from_end,
            poll_interval=config.poll_interval,
            max_line_bytes=config.max_line_bytes,
            use_inotify=not config.poll,
            exclude=config.exclude,
            max_open_files=config.max_open_files or default_max_open_files(),
        )
        self.checkpointer: checkpoint.Checkpointer | None = None
        if config.state_file:
            if load_result == checkpoint.RESTORED:
                self._resume(positions)
            self.checkpointer = checkpoint.Checkpointer(config.state_file, config.state_interval,
                                                        self.tailer.positions, self.store, settings, load_result,
                                                        repairs)
        self.tailer.after_poll = self._after_poll
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=False)
        self.scrape_errors = ScrapeErrors()
        owners = {**store_owners(self.store), "tailer": tailer_owner(self.tailer),
                  "scrape": scrape_owner(self.scrape_errors)}
        if self.checkpointer is not None:
            owners["checkpoint"] = checkpoint_owner(self.checkpointer)
        self.registry.register(FamilyCollector(owners, config.namespace, self.scrape_errors, config.naming))
        self.registry.register(Guarded(ProcessCollector(registry=None), "process", self.scrape_errors))
        self.registry.register(Guarded(PlatformCollector(registry=None), "python_info", self.scrape_errors))
        self._stop = threading.Event()
        self.stopping = threading.Event()  # a stop signal arrived; set before the --shutdown-delay runs out
        self.server: MetricsServer | None = None
        self.heap: HeapFreezer | None = None  # the daemon process's (run_daemon); None: Python's default GC

    def _after_poll(self) -> None:
        self.settle_calls()
        if self.checkpointer is not None:
            self.checkpointer.maybe()

    def settle_calls(self) -> None:
        """LiteLLM payload failures whose --retry-window has passed on the wall clock count as their calls'
        outcomes now (aggregate/calls.py); a quiet file must not hold them back until its next line."""
        with self.store.lock:
            self.store.usage.settle_due(time.time())

    def _new_store(self) -> Store:
        return Store(build_usage(self.config, daily=True))

    def _resume(self, positions: list) -> None:
        """Follow the state's files from their offsets; say what could not be found."""
        found = self.tailer.restore(positions)
        resumed = 0
        for path, how in found.items():
            if how is None:
                log.warning("%s: the file saved in the state was truncated, replaced or deleted while the exporter "
                            "was down; lines written to it after the last save are lost; reading %s from the start",
                            path, path)
            elif how != "same":
                log.info("%s: %s while the exporter was down; finishing it from the saved offset", path, how)
            else:
                resumed += 1
                (log.info if resumed <= FOLLOWED_LOGGED else log.debug)("following %s from its saved offset", path)
        if positions:
            log.info("resuming %d of %d file(s) from the state file", sum(1 for h in found.values() if h),
                     len(positions))

    def save_state(self) -> bool:
        """Write the state file now (the polling thread must not be running)."""
        return self.checkpointer.save() if self.checkpointer is not None else False

    def bind(self) -> MetricsServer:
        """Bind the port first, so a port in use fails before any file is read."""
        from llm_log_exporter.exposition.webconfig import WebConfigSource

        c = self.config
        web = WebConfigSource(c.web_config_file) if c.web_config_file else None  # WebConfigError when unusable
        pages = self.pages()
        self.server = MetricsServer(
            c.host, c.port, self.registry, self.store.ready, web=web, max_connections=c.web_max_connections,
            read_timeout=c.web_read_timeout, write_timeout=c.web_write_timeout, stopping=self.stopping,
            pages=pages,
        )
        self.registry.register(FamilyCollector({"http": http_owner(self.server)}, errors=self.scrape_errors))
        return self.server

    def pages(self) -> Pages | None:
        """The landing page and /api/v1/usage over the per-day sums (None if this store keeps none)."""
        daily = self.store.usage.daily
        if daily is None:
            return None
        files = self.config.files
        return Pages(self.store, daily, daily.zone, lambda: file_rows(self.tailer, self.store, files))

    def stop(self) -> None:
        self._stop.set()
        self.tailer.wake()

    def request_stop(self, signame: str = "a stop request") -> None:
        """SIGTERM/SIGINT: stop after ``--shutdown-delay`` (at once without one, or on a second signal).

        During the delay the files are still followed and /metrics served, so Prometheus scrapes what the
        app wrote last (a native sidecar gets its SIGTERM after the app has exited); /readyz answers 503.
        """
        delay = self.config.shutdown_delay
        if delay <= 0 or self.stopping.is_set():
            self.stopping.set()
            self.stop()
            return
        self.stopping.set()
        log.info("%s: serving /metrics for %g more seconds (--shutdown-delay); a second signal stops at once",
                 signame, delay)
        timer = threading.Timer(delay, self.stop)
        timer.daemon = True
        timer.start()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, _frame: self.request_stop(signal.Signals(signum).name))
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: self._reload_web())

    def _reload_web(self) -> None:
        """SIGHUP: reload --web.config.file off the signal handler (it reads files and may run bcrypt)."""
        web = self.server.web if self.server is not None else None
        if web is not None:
            threading.Thread(target=web.reload, name="web-reload", daemon=True).start()
        else:
            log.info("SIGHUP ignored: no --web.config.file to reload")

    def serve(self) -> None:
        server = self.server or self.bind()
        if self.heap is not None:
            server.scrape_scope = self.heap.scrape
        if self.config.scrape_catch_up > 0:
            wait = self.config.scrape_catch_up
            server.before_scrape = lambda: self.tailer.catch_up(wait)
        thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
        thread.start()
        host, port = server.server_address[:2]
        log.info("serving metrics on %s://%s:%d/metrics", server.scheme, host, port)
        try:
            self.tailer.start_watching()
            self.tailer.poll_once(self._stop)  # a stop signal ends the first read too
            self.settle_calls()
            if self.heap is not None:
                self.heap.settle()
            self.store.ready.set()
            log.info("initial read done; following %d file(s)", len(self.tailer.files))
            self.save_state()
            self.tailer.run(self._stop)
            self.save_state()
        finally:
            self.tailer.close()
            server.shutdown()
            server.server_close()
