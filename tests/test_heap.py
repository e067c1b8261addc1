"""The daemon's heap policy: frozen after the initial read and each scrape, swept on schedule, cycles freed."""

from __future__ import annotations

import gc
import weakref

import pytest

from llm_log_exporter.exposition.heap import HeapFreezer


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _garbage_cycle() -> weakref.ref:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def restore_gc():
    yield
    gc.unfreeze()


def test_a_scrape_freezes_what_is_alive_and_a_due_sweep_frees_the_cycles_frozen_meanwhile(restore_gc) -> None:
    now = [0.0]
    heap = HeapFreezer(sweep_interval=600, clock=lambda: now[0])
    heap.settle()
    assert heap.sweeps == 1 and gc.get_freeze_count() > 0
    cycle = _garbage_cycle()  # garbage the collector has not seen yet when the scrape ends
    heap.after_burst()
    gc.collect()
    assert cycle() is not None  # frozen with the heap: out of the collector's reach until the next sweep
    now[0] = 599.0
    heap.after_burst()
    assert heap.sweeps == 1 and cycle() is not None
    now[0] = 600.0
    heap.after_burst()  # the sweep is due
    assert heap.sweeps == 2 and cycle() is None and gc.get_freeze_count() > 0


def test_no_collection_runs_during_a_scrapes_render_and_what_it_made_is_frozen_after(restore_gc) -> None:
    heap = HeapFreezer(sweep_interval=600)
    assert gc.isenabled()
    with heap.scrape():
        assert not gc.isenabled()
        made = [_Node() for _ in range(5000)]
    assert gc.isenabled() and gc.get_freeze_count() >= len(made)
    gc.disable()  # a caller that had paused it (the renderer pauses it too) finds it paused after
    try:
        with heap.scrape():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_daemon_freezes_its_heap_after_the_initial_read_and_after_each_scrape(tmp_path) -> None:
    """Through the CLI process as users run it: the frozen heap shows in the process's own GC counts."""
    import ast
    import subprocess
    import sys
    import textwrap

    log = tmp_path / "usage.jsonl"
    log.write_text('{"v":1,"event":"request","model":"m","prompt_tokens":1,"ts":1700000000}\n')
    script = textwrap.dedent(f"""
        import gc, threading, urllib.request, sys
        from llm_log_exporter import cli
        import llm_log_exporter.exposition.heap as heap
        counts = []
        original = heap.HeapFreezer.after_burst
        def after_burst(self):
            original(self)
            counts.append((self.sweeps, gc.get_freeze_count()))
        heap.HeapFreezer.after_burst = after_burst
        def scrape():
            import time, os, signal
            for _ in range(600):
                try:
                    urllib.request.urlopen("http://127.0.0.1:{{port}}/readyz", timeout=5).read()
                    break
                except Exception:
                    time.sleep(0.05)
            for _ in range(2):
                urllib.request.urlopen("http://127.0.0.1:{{port}}/metrics", timeout=5).read()
            for _ in range(600):  # the freeze follows the reply: the client may read it first
                if len(counts) == 2:
                    break
                time.sleep(0.01)
            print(counts, flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
        threading.Thread(target=scrape, daemon=True).start()
        cli.main(["--file", {str(log)!r}, "--port", "{{port}}", "--host", "127.0.0.1"], standalone_mode=False)
    """)
    from tests.helpers import free_port

    port = free_port()
    out = subprocess.run([sys.executable, "-c", script.replace("{port}", str(port))], capture_output=True, text=True,
                         timeout=120)
    counts = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    assert len(counts) == 2 and all(sweeps == 1 and frozen > 1000 for sweeps, frozen in counts), out
