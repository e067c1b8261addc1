"""The restart state file: read positions and aggregation state, saved together at one consistent moment.

Offsets alone would not do: after a crash the metrics would restart from zero while the files resume
mid-way. Saved together, between two tailer polls (when the sink has been given exactly the lines
before every offset), a restart after SIGTERM or SIGKILL counts every line exactly once.

Format (versioned JSON)::

    {"format": "llm-log-exporter-state", "version": 2, "exporter": "0.1.0",
     "settings": {...options that change what the metrics mean...},
     "files": [{...one Position...}], "metrics": {"usage": ..., "files": ...}}

Each part of the state saves and restores itself (``Usage.dump``, ``Store.dump_files``, and the breakers,
budgets, streams and label guards they hold); records and tables name their slots, taken from the family
table, so a file written by a version that counts other things is *foreign*, never silently misread. A
foreign file (another format, version, slot layout or settings) is reported and ignored: the exporter
starts from fresh metrics and its configured start position, so nothing is counted twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from typing import Any

import orjson

from llm_log_exporter import __version__
from llm_log_exporter.aggregate.periods import get_zone, zone_name
from llm_log_exporter.aggregate.store import FILE_SLOTS, Store
from llm_log_exporter.aggregate.usage import KEY, LAYOUT, TABLES
from llm_log_exporter.files import write_atomic
from llm_log_exporter.tailing.positions import Position

log = logging.getLogger("llm_log_exporter")

FORMAT = "llm-log-exporter-state"
VERSION = 2

# Options whose change makes saved counters mean something else (namespace, port, paths do not).
MEANINGFUL_OPTIONS = ("format", "buckets", "ttft_buckets", "tpot_buckets", "max_tenants", "max_models",
                      "max_providers", "max_line_bytes", "derived_breaker", "tz", "daily_days", "daily_label_sets",
                      "extra_label", "max_extra_label_values", "naming")

# Load outcomes, exposed as llm_exporter_state_load_info{result}.
RESTORED, ABSENT, CORRUPT, FOREIGN = "restored", "absent", "corrupt", "foreign"
LOAD_RESULTS = (RESTORED, ABSENT, CORRUPT, FOREIGN)
# What a load may repair (``Store.repair_times``), exposed as llm_exporter_state_repairs_total{part}.
REPAIR_PARTS = ("clock", "streams", "breakers", "budgets", "files")


class StateError(ValueError):
    """A state file that cannot be used; ``kind`` is CORRUPT or FOREIGN."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def settings_of(config: Any) -> dict[str, Any]:
    """The options recorded in a state file; a state written with other values is foreign."""
    out: dict[str, Any] = {}
    for name in MEANINGFUL_OPTIONS:
        value = getattr(config, name)
        if name == "tz":  # the zone itself, not "local": days and budget periods are cut in it
            out[name] = zone_name(get_zone(value))
        elif name == "extra_label":  # names, in key-column order
            out[name] = [str(v) for v in value]
        else:
            out[name] = [float(v) for v in sorted(value)] if isinstance(value, (list, tuple)) else value
    return out


_READ_BYTES = FILE_SLOTS.index("read_bytes")


def _compatible(metrics: Any) -> None:
    """Raise FOREIGN unless the saved records, tables and file records have this version's slots."""
    if not isinstance(metrics, dict) or set(metrics) != {"usage", "files"}:
        have = sorted(metrics) if isinstance(metrics, dict) else metrics
        raise StateError(FOREIGN, f"metric sections {have}, expected ['files', 'usage']")
    usage, files = metrics["usage"], metrics["files"]
    if not isinstance(usage, dict) or usage.get("layout") != list(LAYOUT[:KEY]):
        raise StateError(FOREIGN, "its usage records hold other slots than this version counts")
    if not isinstance(usage.get("tables"), dict) or set(usage["tables"]) != set(TABLES):
        raise StateError(FOREIGN, "its gateway tables differ from the ones this version keeps")
    if not isinstance(files, dict) or files.get("slots") != list(FILE_SLOTS):
        raise StateError(FOREIGN, "its file records hold other slots than this version counts")


# ----------------------------------------------------------------------------- document


def dump(store: Store, positions: Sequence[Position], settings: dict[str, Any]) -> bytes:
    """The state document; bytes of held partial lines are taken off ``read_bytes`` (re-read after restart)."""
    held = {p.path: p.held for p in positions if p.held}
    with store.lock:
        metrics = {"usage": store.usage.dump(), "files": store.dump_files()}
        files = metrics["files"]["files"]  # copies: adjusting them leaves the store alone
        for path, nbytes in held.items():
            if path in files:
                files[path][_READ_BYTES] = max(0, files[path][_READ_BYTES] - nbytes)
        doc = {"format": FORMAT, "version": VERSION, "exporter": __version__, "settings": settings,
               "files": [asdict(p) for p in positions], "metrics": metrics}
        return orjson.dumps(doc)  # inside the lock: the usage dump hands out live lists


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
    _compatible(metrics)
    store = new_store()
    try:
        positions = [_position(raw) for raw in doc["files"]]
        store.usage.load(metrics["usage"])
        store.load_files(metrics["files"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise StateError(CORRUPT, f"{type(err).__name__}: {err}") from None
    if len({p.path for p in positions}) != len(positions):
        raise StateError(CORRUPT, "a file is listed twice")
    return store, positions


def load(
    path: str, settings: dict[str, Any], new_store: Callable[[], Store], latest: float | None = None
) -> tuple[str, Store | None, list[Position], dict[str, int]]:
    """Read the state file: ``(RESTORED, store, positions, repairs)`` or ``(ABSENT | CORRUPT | FOREIGN, None,
    [], {})``. Event times beyond ``latest`` (the clock plus --max-future-skew) are repaired and reported:
    ``repairs`` counts them by part.

    Never raises: an unusable file is logged (it is replaced at the next save) and the caller starts fresh.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        log.info("state file %s does not exist yet; starting fresh", path)
        return ABSENT, None, [], {}
    except OSError as err:
        log.error("cannot read state file %s (%s); starting fresh, every file is read from the start", path, err)
        return CORRUPT, None, [], {}
    try:
        store, positions = parse(data, settings, new_store)
    except StateError as err:
        what = "corrupt" if err.kind == CORRUPT else "foreign"
        log.error("state file %s is %s: %s; ignoring it: metrics start fresh and every file is read from "
                  "its configured start (it is overwritten at the next save)", path, what, err)
        return err.kind, None, [], {}
    repairs = store.repair_times(latest) if latest is not None else {}
    if repairs:
        clock = store.usage.clock
        log.warning("state file %s holds event times after %s (more than --max-future-skew ahead of this host's "
                    "clock: a line in milliseconds, or a writer's clock ahead); repaired %s: the event clock is "
                    "back at %s, budget windows of later periods are dropped (their spend is lost)",
                    path, _iso(latest), ", ".join(f"{n} {part}" for part, n in sorted(repairs.items())),
                    _iso(clock) if clock is not None else "unset (no sound time)")
    return RESTORED, store, positions, repairs


def _iso(ts: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts is not None else "?"


class Checkpointer:
    """Saves the state every ``interval`` seconds (skipped when nothing changed) and on demand.

    ``maybe`` is the tailer's ``after_poll``; ``save`` runs at shutdown. Both must run in the polling
    thread (or after it stopped), which is what makes positions and metrics agree.
    """

    def __init__(self, path: str, interval: float, positions: Callable[[], list[Position]], store: Store,
                 settings: dict[str, Any], load_result: str = ABSENT, repairs: dict[str, int] | None = None) -> None:
        self.path = path
        self.interval = interval
        self._positions = positions
        self._store = store
        self._settings = settings
        self.load_result = load_result
        self.repairs = dict(repairs or {})  # values repaired at load, by part (llm_exporter_state_repairs_total)
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
