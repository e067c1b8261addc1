"""The cyclic garbage collector for the daemon's large, long-lived heap.

The store and the renderer's caches hold millions of container objects that live for the whole run,
and every scrape replaces a few thousand of them (copies of changed records, chunk lists of ~50k
entries). Left to its generational thresholds, the collector traverses those survivors again and
again: at 49k series and 2k lines/s, measured, a collection of the older generations every ~0.6 s
costing 10-30 ms and a full one of ~120 ms every few seconds, none of them finding garbage (what the
scrapes drop is freed by reference counting), each one a stall of the scrape or the tailer.

So the heap is frozen (``gc.freeze``: moved out of the collector's reach, O(1)) once the initial read
is done and again after each scrape's render, the collector paused during the render: what a scrape
left behind is not traversed by later collections.
Reference cycles that became garbage just before a freeze would be kept with it, so every
``sweep_interval`` the heap is unfrozen and fully collected once (a pause of the order of one full
collection, ~0.1-0.2 s at 49k series), then frozen again. The daemon installs this (``run_daemon``).
Replay has the same heap and the same pattern, a step's samples for a render: the replay command
(``run_replay``) calls ``after_burst`` after each step (7-19 % less CPU for a replay, measured) and unfreezes
at its end; other in-process users (tests, ``replay_history``) keep Python's default collector.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Iterator

DEFAULT_SWEEP_INTERVAL = 600.0  # seconds between full collections of the frozen heap


class HeapFreezer:
    """Freezes the heap after the initial read and after each scrape; sweeps it every ``sweep_interval``."""

    def __init__(self, sweep_interval: float = DEFAULT_SWEEP_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sweep_interval = sweep_interval
        self.clock = clock
        self.sweeps = 0
        self._last_sweep = clock()
        self._lock = threading.Lock()  # a scrape and the tailer thread may both get here

    def settle(self) -> None:
        """After the initial read: collect what that left as garbage, freeze the rest."""
        with self._lock:
            self._sweep()

    @contextlib.contextmanager
    def scrape(self) -> Iterator[None]:
        """Around a scrape's render: no collection meanwhile (the objects it makes would be traversed at once
        after it, ~5 ms at 49k series), then what it left is frozen (``after_burst``)."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            self.after_burst()
            if enabled:
                gc.enable()

    def after_burst(self) -> None:
        """After a burst of long-lived objects (a scrape's render, a replay step): freeze what it left (a
        sweep when one is due)."""
        with self._lock:
            if self.clock() - self._last_sweep >= self.sweep_interval:
                self._sweep()
            else:
                gc.freeze()

    def _sweep(self) -> None:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.sweeps += 1
        self._last_sweep = self.clock()
