"""The restart state file: read positions and metric state, saved together at one consistent moment.

Offsets alone would not do: after a crash the metrics would restart from zero while the files resume
mid-way. Saved together, between two tailer polls (when the sink has been given exactly the lines
before every offset), a restart after SIGTERM or SIGKILL counts every line exactly once.

Format (versioned JSON)::

    {"format": "llm-log-exporter-state", "version": 1, "exporter": "0.1.0",
     "settings": {...options that change what the metrics mean...},
     "files": [{...one Position...}], "metrics": {"<section>": ..., ...}}

The metric state is made of named sections, each a ``dump(store)`` / ``load(store, data)`` pair
registered with ``section()``; a state file must hold exactly the registered sections. A file with
another format, version, section set or settings is *foreign*: it is reported and ignored, and the
exporter starts from fresh metrics and its configured start position, so nothing is counted twice.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import orjson

from llm_log_exporter import __version__
from llm_log_exporter.metrics import DUR_BUCKETS, FileStats, Store
from llm_log_exporter.positions import Position

log = logging.getLogger("llm_log_exporter")

FORMAT = "llm-log-exporter-state"
VERSION = 1

# Options whose change makes saved counters mean something else (namespace, port, paths do not).
MEANINGFUL_OPTIONS = ("format", "buckets", "ttft_buckets", "max_tenants", "max_models", "max_providers",
                      "max_line_bytes", "derived_breaker")

# Load outcomes, exposed as llm_exporter_state_load_info{result}.
RESTORED, ABSENT, CORRUPT, FOREIGN = "restored", "absent", "corrupt", "foreign"


class StateError(ValueError):
    """A state file that cannot be used; ``kind`` is CORRUPT or FOREIGN."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Section:
    dump: Callable[[Store], Any]
    load: Callable[[Store, Any], None]  # raises KeyError/TypeError/ValueError on bad data


SECTIONS: dict[str, Section] = {}


def section(name: str, dump: Callable[[Store], Any], load: Callable[[Store, Any], None]) -> None:
    """Register a named part of the metric state (called under the store lock, in the polling thread)."""
    SECTIONS[name] = Section(dump, load)


def settings_of(config: Any) -> dict[str, Any]:
    """The options recorded in a state file; a state written with other values is foreign."""
    out: dict[str, Any] = {}
    for name in MEANINGFUL_OPTIONS:
        value = getattr(config, name)
        out[name] = [float(v) for v in sorted(value)] if isinstance(value, (list, tuple)) else value
    return out


# ----------------------------------------------------------------------------- sections


def _number(value: Any, integral: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"bad number {value!r:.40}")
    if integral and value != int(value):
        raise ValueError(f"not an integer {value!r:.40}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r:.40}")
    return value


def _dump_usage(store: Store) -> Any:
    usage = store.usage
    return {
        "records": [[*key, rec[:DUR_BUCKETS], rec[DUR_BUCKETS], rec[DUR_BUCKETS + 1]]
                    for key, rec in usage.records.items()],
        "guards": {name: {"seen": sorted(g.seen), "folded": sorted(g.folded), "overflow": g.overflow}
                   for name, g in usage.guards.items()},
    }


def _load_usage(store: Store, data: Any) -> None:
    usage = store.usage
    widths = (DUR_BUCKETS, len(usage.buckets) + 1, len(usage.ttft_buckets) + 1)
    for tenant, provider, model, scalars, dur, ttft in data["records"]:
        key = (_text(tenant), _text(provider), _text(model))
        if (len(scalars), len(dur), len(ttft)) != widths:
            raise ValueError(f"record {key} has the wrong shape")
        usage.records[key] = [
            *(float(_number(v)) for v in scalars),
            [int(_number(v, True)) for v in dur],
            [int(_number(v, True)) for v in ttft],
            key,
        ]
        usage.breakers.register(key[1])
    if set(data["guards"]) != set(usage.guards):
        raise ValueError("label guards differ")
    for name, saved in data["guards"].items():
        guard = usage.guards[name]
        seen = {_text(v) for v in saved["seen"]}
        if len(seen) > guard.limit:
            raise ValueError(f"more {name} values than --max-* allows")
        guard.seen = seen
        guard.folded = {_text(v) for v in saved["folded"]}
        guard.overflow = int(_number(saved["overflow"], True))


_FILE_COUNTS = ("bytes", "rotations", "truncations", "open_errors")


def _dump_files(store: Store) -> Any:
    return {
        path: {"lines": st.lines, "invalid": st.invalid, "last_event_ts": st.last_event_ts,
               **{name: getattr(st, name) for name in _FILE_COUNTS}}
        for path, st in store.files.items()
    }


def _load_files(store: Store, data: Any) -> None:
    for path, saved in data.items():
        st = FileStats()
        st.lines.update({_text(k): int(_number(v, True)) for k, v in saved["lines"].items()})
        st.invalid = {_text(k): int(_number(v, True)) for k, v in saved["invalid"].items()}
        for name in _FILE_COUNTS:
            setattr(st, name, int(_number(saved[name], True)))
        ts = saved["last_event_ts"]
        st.last_event_ts = None if ts is None else float(_number(ts))
        store.files[_text(path)] = st


def _counts(data: Any) -> dict[str, int]:
    return {_text(k): int(_number(v, True)) for k, v in data.items()}


def _dump_gateway(store: Store) -> Any:
    usage = store.usage
    return {
        "clock": usage.clock,
        "cache": usage.cache,
        "rate_limits": usage.rate_limits,
        "provider_errors": [[p, e, n] for (p, e), n in usage.provider_errors.items()],
        "cost_unknown": usage.cost_unknown,
        "breakers": {name: [b.explicit, b.state, b.failures, b.opened_at]
                     for name, b in usage.breakers.providers.items()},
        "budget_windows": usage.budgets.windows,
        "budget_events": usage.budgets.explicit,
        "streams": list(usage.streams.items()),
        "expired_streams": usage.expired_streams,
    }


def _load_gateway(store: Store, data: Any) -> None:
    """Event-time state: the breakers, budget windows and open streams go on exactly where they were."""
    usage = store.usage
    clock = data["clock"]
    usage.clock = None if clock is None else float(_number(clock))
    usage.cache = {_text(t): [int(_number(h, True)), int(_number(m, True))] for t, (h, m) in data["cache"].items()}
    usage.rate_limits = _counts(data["rate_limits"])
    usage.provider_errors = {(_text(p), _text(e)): int(_number(n, True)) for p, e, n in data["provider_errors"]}
    usage.cost_unknown = _counts(data["cost_unknown"])
    for name, (explicit, state_, failures, opened_at) in data["breakers"].items():
        usage.breakers.restore(_text(name), explicit is True, int(_number(state_, True)),
                               int(_number(failures, True)), float(_number(opened_at)))
    usage.budgets.windows = {_text(t): [float(_number(a)), float(_number(b))] for t, (a, b) in
                             data["budget_windows"].items()}
    usage.budgets.explicit = {_text(t): (float(_number(a)), float(_number(b))) for t, (a, b) in
                              data["budget_events"].items()}
    usage.streams = {_text(c): (None if t is None else float(_number(t))) for c, t in data["streams"]}
    usage.expired_streams = int(_number(data["expired_streams"], True))


section("usage", _dump_usage, _load_usage)
section("files", _dump_files, _load_files)
section("gateway", _dump_gateway, _load_gateway)


# ----------------------------------------------------------------------------- document


def dump(store: Store, positions: Sequence[Position], settings: dict[str, Any]) -> bytes:
    """The state document; bytes of held partial lines are taken off ``read_bytes`` (re-read after restart)."""
    with store.lock:
        metrics = {name: sec.dump(store) for name, sec in SECTIONS.items()}
        doc = {"format": FORMAT, "version": VERSION, "exporter": __version__, "settings": settings,
               "files": [asdict(p) for p in positions], "metrics": metrics}
        data = orjson.dumps(doc)  # inside the lock: the sections hand out live lists
    if not any(p.held for p in positions):
        return data
    doc = orjson.loads(data)
    files = doc["metrics"].get("files", {})
    for p in positions:
        if p.held and p.path in files:
            files[p.path]["bytes"] = max(0, files[p.path]["bytes"] - p.held)
    return orjson.dumps(doc)


_POSITION_TYPES = {f.name: f.type for f in fields(Position)}


def _position(raw: Any) -> Position:
    if not isinstance(raw, dict) or set(raw) != set(_POSITION_TYPES):
        raise ValueError(f"bad file entry {raw!r:.80}")
    for name, kind in _POSITION_TYPES.items():
        value = raw[name]
        ok = {"str": isinstance(value, str), "bool": isinstance(value, bool)}.get(
            kind, isinstance(value, int) and not isinstance(value, bool) and value >= 0
        )
        if not ok:
            raise ValueError(f"bad {name} in file entry {raw!r:.80}")
    return Position(**raw)


def parse(data: bytes, settings: dict[str, Any], new_store: Callable[[], Store]) -> tuple[Store, list[Position]]:
    """Validate a state document and build the store it describes; raises ``StateError``."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise StateError(CORRUPT, f"not JSON ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StateError(FOREIGN, f"not an {FORMAT} file")
    if doc.get("version") != VERSION:
        raise StateError(FOREIGN, f"state version {doc.get('version')!r}; this exporter reads version {VERSION}")
    saved = doc.get("settings")
    if saved != settings:
        changed = sorted(k for k in {*settings, *(saved or {})} if (saved or {}).get(k) != settings.get(k))
        detail = ", ".join(f"{k}: {(saved or {}).get(k)!r} then, {settings.get(k)!r} now" for k in changed)
        raise StateError(FOREIGN, f"written with other options ({detail})")
    metrics = doc.get("metrics")
    if not isinstance(metrics, dict) or set(metrics) != set(SECTIONS):
        have = sorted(metrics) if isinstance(metrics, dict) else metrics
        raise StateError(FOREIGN, f"metric sections {have}, expected {sorted(SECTIONS)}")
    store = new_store()
    try:
        positions = [_position(raw) for raw in doc["files"]]
        for name, sec in SECTIONS.items():
            sec.load(store, metrics[name])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise StateError(CORRUPT, f"{type(err).__name__}: {err}") from None
    if len({p.path for p in positions}) != len(positions):
        raise StateError(CORRUPT, "a file is listed twice")
    return store, positions


def load(
    path: str, settings: dict[str, Any], new_store: Callable[[], Store]
) -> tuple[str, Store | None, list[Position]]:
    """Read the state file: ``(RESTORED, store, positions)`` or ``(ABSENT | CORRUPT | FOREIGN, None, [])``.

    Never raises: an unusable file is logged (it is replaced at the next save) and the caller starts fresh.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        log.info("state file %s does not exist yet; starting fresh", path)
        return ABSENT, None, []
    except OSError as err:
        log.error("cannot read state file %s (%s); starting fresh, every file is read from the start", path, err)
        return CORRUPT, None, []
    try:
        store, positions = parse(data, settings, new_store)
    except StateError as err:
        what = "corrupt" if err.kind == CORRUPT else "foreign"
        log.error("state file %s is %s: %s; ignoring it: metrics start fresh and every file is read from "
                  "its configured start (it is overwritten at the next save)", path, what, err)
        return err.kind, None, []
    return RESTORED, store, positions


def write_atomic(path: str, data: bytes) -> None:
    """Temp file in the same directory, fsync, rename, fsync the directory: a crash leaves old or new."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on a directory
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Checkpointer:
    """Saves the state every ``interval`` seconds (skipped when nothing changed) and on demand.

    ``maybe`` is the tailer's ``after_poll``; ``save`` runs at shutdown. Both must run in the polling
    thread (or after it stopped), which is what makes positions and metrics agree.
    """

    def __init__(self, path: str, interval: float, positions: Callable[[], list[Position]], store: Store,
                 settings: dict[str, Any], load_result: str = ABSENT) -> None:
        self.path = path
        self.interval = interval
        self._positions = positions
        self._store = store
        self._settings = settings
        self.load_result = load_result
        self.writes = {"ok": 0, "error": 0}
        self.last_write: float | None = None  # wall clock of the last successful save
        self._due = time.monotonic() + interval
        self._last_data = b""
        self._last_error = ""

    def maybe(self) -> None:
        if time.monotonic() >= self._due:
            self.save()

    def save(self) -> bool:
        """Write the state now; failures are logged (once per distinct error) and counted, never raised."""
        self._due = time.monotonic() + self.interval
        try:
            data = dump(self._store, self._positions(), self._settings)
            if data != self._last_data:
                write_atomic(self.path, data)
                self._last_data = data
        except (OSError, ValueError, TypeError) as err:
            self.writes["error"] += 1
            if str(err) != self._last_error:
                self._last_error = str(err)
                log.error("cannot save state file %s: %s (retrying every %gs)", self.path, err, self.interval)
            return False
        if self._last_error:
            self._last_error = ""
            log.info("state file %s saved again", self.path)
        self.writes["ok"] += 1
        self.last_write = time.time()
        return True
