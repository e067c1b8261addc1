"""Follow JSON-lines files by path and hand complete lines, in batches, to a sink.

The loop every mature tailer uses (mtail's filestream, Fluent Bit, Vector): on each wake read every open
file to EOF, then ``stat`` the path and compare ``(st_dev, st_ino)`` with the open fd to notice rotation,
and compare size and a fingerprint of the bytes before the offset to notice truncation (the stream's
lifecycle is told in ``tailing/stream.py``). Wakes come from directory watches (latency) and from a timer
(correctness where inotify is silent: NFS, bind mounts, queue overflow); events are never data.

The promise: every complete line is delivered exactly once and a partial line never is.

Descriptors are bounded (``max_open_files``): past the bound, the file read longest ago gives its
descriptor back (it is *parked*, see ``tailing/stream.py``) and is reopened by path, identity checked,
when its size or modification time changes, so any number of files is read, each line once, with a
fixed number of descriptors. Each ``--file`` pattern has a state (``following``, ``missing``,
``not_a_file``, ``unreadable``), logged when it changes and exported as ``llm_exporter_file_state``.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from llm_log_exporter.tailing.discovery import FOLLOWING, MISSING, NOT_A_FILE, UNREADABLE, Discovery, Ident, real_dir
from llm_log_exporter.tailing.lines import LineSplitter
from llm_log_exporter.tailing.positions import FP_BYTES, OPEN_FLAGS, Position, digest, fingerprints, locate
from llm_log_exporter.tailing.stream import FileStream, TailSink
from llm_log_exporter.tailing.watches import Watches

log = logging.getLogger(__name__)

MAX_OPEN_FILES_CAP = 4096


def default_max_open_files() -> int:
    """``--max-open-files`` when not given: half the soft RLIMIT_NOFILE (512 at the usual 1024), at most
    4096; the other half is for HTTP connections, the state file, inotify and the libraries."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
        return 512
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return MAX_OPEN_FILES_CAP
    return max(8, min(MAX_OPEN_FILES_CAP, soft // 2))


OUT_OF_FDS = (errno.EMFILE, errno.ENFILE)
FOLLOWED_LOGGED = 50  # "following PATH" lines per poll; the rest are summed up (all of them at debug level)
# How long a file replaced at its path and found under no other name (a rename chain in progress: a listing
# taken while ``.1`` → ``.2`` → … runs can miss a file, and so can the next one, a few ms later) is still
# followed while it is linked. Retired earlier, it would be found again under its new name and read twice.
UNSEEN_GRACE = 5.0

__all__ = ["TailSink", "Tailer"]


class Tailer:
    """Follows files matching ``patterns`` and feeds complete lines to ``sink``.

    ``min_wake_interval`` caps watch-driven polls (default 10/s) while files are busy (a poll read
    ``busy_bytes`` or more); the timer runs every ``poll_interval``.
    ``after_poll`` runs in the polling thread after each poll of ``run``: the one moment where
    ``positions()`` and everything the sink was given agree (used to write the restart state).

    Threading: ``poll_once``/``run`` must be driven by one thread; ``files``, ``lag_bytes`` and ``wake``
    may be called from any thread. Shut down with ``stop.set()``, join the ``run`` thread, then ``close()``.
    """

    # Larger batches cost less per line (a wake's fixed costs, caches warm for the whole batch); a scrape does
    # not wait for this pause (``catch_up``), so it delays nothing a reader sees.
    min_wake_interval: float = 0.1
    wake_interval: float = 0.005  # how often the waker reads inotify at most (see __init__)
    busy_bytes: int = 32 << 10  # a poll that read this much is a busy one: the next waits min_wake_interval

    def __init__(
        self,
        patterns: Sequence[str],
        sink: TailSink,
        *,
        from_end: bool = False,
        poll_interval: float = 1.0,
        max_line_bytes: int = 1 << 20,
        use_inotify: bool = True,
        exclude: Sequence[str] = (),
        read_chunk: int = 1 << 20,
        after_poll: Callable[[], None] | None = None,
        max_open_files: int | None = None,
    ) -> None:
        if max_line_bytes < 1 or read_chunk < 1 or poll_interval <= 0:
            raise ValueError("max_line_bytes, read_chunk and poll_interval must be positive")
        if max_open_files is not None and max_open_files < 1:
            raise ValueError("max_open_files must be positive")
        self._discovery = Discovery(patterns, exclude)
        self._sink = sink
        self._from_end = from_end
        self.poll_interval = poll_interval
        self._max = max_line_bytes
        self._chunk = read_chunk
        self._use_inotify = use_inotify
        self.after_poll = after_poll
        self._streams: dict[str, FileStream] = {}
        self._lock = threading.Lock()  # guards _streams swaps and fd closes against files/lag_bytes
        self._vacated: set[str] = set()  # paths whose file left; a new file there is a rotation
        # Files whose path now names another file but that are still linked somewhere this poll's listing did
        # not show (a rotation chain renaming while discovery ran): kept, and drained, until a listing finds
        # them under another name, for at most UNSEEN_GRACE while they stay linked.
        self._unseen: dict[Ident, FileStream] = {}
        self._unseen_since: dict[Ident, float] = {}  # when each of them was first missed (monotonic)
        self._globbing = any(glob.has_magic(p) for p in self._discovery.patterns)  # a new name can match
        self._start_paths: set[str] | None = None  # from_end: paths seen at the first poll, not yet opened
        self._open_errors: dict[str, int | None] = {}
        self._read_errors: dict[str, int | None] = {}
        self._wake = threading.Event()
        self._hurry = threading.Event()  # a reader waits for a poll (catch_up): no pause for a busy file
        self._polls = threading.Condition()  # guards the counts below and the clearing of both events
        self._begun = self._done = 0  # polls of ``run`` begun, and finished
        self._running = False  # ``run`` is polling
        self._stop: threading.Event | None = None
        # The waker reads inotify at most every 5 ms: what it adds to write → visible (it sleeps after a read so
        # the kernel merges a busy file's events) stays small beside a scrape; busy polls are capped above.
        self._watches = Watches(self.wake, self.wake_interval)
        self._last_poll_error = ""
        self._closed = False
        self.max_open_files = max_open_files
        self._holding: OrderedDict[FileStream, None] = OrderedDict()  # streams holding a descriptor, least recent first
        self._states: dict[str, tuple[str, str]] = {}  # pattern → (state, detail), swapped whole

    # ----------------------------------------------------------------- public API

    @property
    def files(self) -> list[str]:
        """Paths currently followed (a renamed-away file stays listed under its old path)."""
        with self._lock:
            return list(self._streams)

    def lag_bytes(self) -> dict[str, int]:
        """Per path: bytes written but not yet read (``fstat`` of the open fd, so rotation-safe)."""
        lag: dict[str, int] = {}
        sizes = self._discovery.sizes
        with self._lock:
            for path, st in self._streams.items():
                if st.parked:  # what the last poll's stat saw
                    seen = sizes.get(path) or st.seen
                    if seen is not None:
                        lag[path] = max(0, seen[0] - st.offset)
                    continue
                try:
                    lag[path] = max(0, os.fstat(st.fd).st_size - st.offset)
                except OSError:
                    continue
        return lag

    def file_states(self) -> dict[str, str]:
        """Each ``--file`` pattern's state as of the last poll: following, missing, not_a_file or unreadable."""
        return {pattern: state for pattern, (state, _) in self._states.items()}

    @property
    def open_files(self) -> int:
        """Descriptors held for files now (at most ``max_open_files``)."""
        return len(self._holding)

    def wake(self) -> None:
        if not self._wake.is_set():  # called per filesystem event: skip the Condition when already set
            self._wake.set()

    def catch_up(self, timeout: float) -> bool:
        """Wait, at most ``timeout`` seconds, for a poll of ``run`` that begins after this call (hurried past
        a busy file's pause): a scrape that calls it first shows every line written before it began. False
        when ``run`` is not polling (before it starts, after it ends) or no such poll ended in time."""
        with self._polls:
            if not self._running:
                return False
            wanted = self._begun + 1
            self._hurry.set()
            self._wake.set()
            self._polls.wait_for(lambda: self._done >= wanted or not self._running, timeout)
            return self._done >= wanted

    def start_watching(self) -> None:
        """Start watch wake-ups; the timer in ``run`` stays the safety net."""
        if not self._use_inotify or self._closed:
            return
        self._watches.start()
        self._watches.update(self._watch_dirs())

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; a failing poll is logged, not fatal, so the exporter keeps tailing."""
        self._stop = stop
        self._running = True
        threading.Thread(target=self._wake_on_stop, args=(stop,), name="tailer-stop", daemon=True).start()
        try:
            while not stop.is_set():
                with self._polls:
                    self._wake.clear()
                    self._hurry.clear()
                    self._begun += 1
                started = time.monotonic()
                before = self._read_total()
                polled = False
                try:
                    self.poll_once()
                    polled = True
                except Exception as exc:
                    self._log_poll_error(exc)
                with self._polls:
                    self._done = self._begun
                    self._polls.notify_all()
                try:
                    if polled and self.after_poll is not None:
                        self.after_poll()  # the restart state: after the notify, a scrape does not wait for it
                except Exception as exc:
                    self._log_poll_error(exc)
                if self._wake.wait(self.poll_interval) and self._read_total() - before >= self.busy_bytes:
                    # Coalesce busy bursts: a writer that opens/appends/closes per line sends an event per
                    # line; polling on each would cost most of a core at 20k lines/s. A quiet file is read
                    # at once (the waker's own interval aside): a new line is visible sooner. A reader
                    # waiting in ``catch_up`` cuts the pause short.
                    self._hurry.wait(self.min_wake_interval - (time.monotonic() - started))
        finally:
            self._stop = None
            with self._polls:
                self._running = False
                self._polls.notify_all()  # nobody waits for a poll that will not come

    def _read_total(self) -> int:
        return sum(st.read_total for st in self._streams.values())

    def poll_once(self, stop: threading.Event | None = None) -> None:
        """One wake: read open files to EOF, then rediscover paths and apply rotations. ``stop`` (``run``
        passes its own): once set, the poll ends after the read in progress (a first read of a file that
        grows faster than it is read would otherwise never end, and a SIGTERM would wait for it)."""
        if stop is not None and self._stop is None:
            self._stop = stop
            try:
                self.poll_once()
            finally:
                self._stop = None
            return
        if self._closed:
            return
        for st in [*self._streams.values(), *self._unseen.values()]:
            if not st.parked:
                self._guarded(self._service, st)
        if self._stop is not None and self._stop.is_set():
            return  # shutting down: no rotation handling on half-read files
        try:
            found = self._discovery.find()
        except OSError as err:  # out of descriptors: a glob would see nothing, and files are not gone
            if err.errno in OUT_OF_FDS and self._holding:
                self._shrink(err)
            self._log_poll_error(err)
            return
        self._track_start_paths(found)
        self._reconcile(found)
        self._open_new(found)
        self._service_parked()
        self._update_states()
        if self._watches.active:
            self._watches.update(self._watch_dirs())

    def close(self) -> None:
        """Stop the watches and close every fd; held partial lines are dropped silently."""
        if self._closed:
            return
        self._closed = True
        self._watches.close()
        with self._lock:
            streams, self._streams = [*self._streams.values(), *self._unseen.values()], {}
            self._unseen = {}
            self._unseen_since = {}
            for st in streams:
                st.close()
            self._holding.clear()
        self._wake.set()

    # ----------------------------------------------------------------- restart positions

    def positions(self) -> list[Position]:
        """Resumable positions of the followed files; call between polls from the polling thread.

        A held partial line is not consumed: its start is the saved offset, so a restart reads it again
        whole. A file truncated since the last read is left out (a restart reads it from the start, as
        the next poll would). Raises ``OSError`` when a file cannot be read, so no position is guessed.
        """
        out: list[Position] = []
        for st in list(self._streams.values()):
            position = self._position(st)
            if position is not None:
                out.append(position)
        return out

    @staticmethod
    def _position(st: FileStream) -> Position | None:
        """``st``'s resumable position; None when its file was truncated (or is shorter than the offset).
        A parked stream holds no partial line and complete fingerprints, so it needs no descriptor here."""
        held = len(st.lines.tail)
        offset = st.offset - held
        n = min(offset, FP_BYTES)
        if held:
            if st.truncated():
                return None
            before = os.pread(st.fd, n, offset - n)
        else:
            before = st.fp
        head = st.head[:n]
        if len(head) != n or len(before) != n:  # opened mid-file (from_end) and head not read yet
            fps = fingerprints(st.fd, offset)
            if fps is None:
                return None
            head_digest, before_digest = fps
        else:
            head_digest, before_digest = digest(head), digest(before)
        dev, ino = st.ident
        return Position(st.path, st.watch_dir, dev, ino, offset, st.lines.lineno, st.lines.skip,
                        head_digest, before_digest, held)

    def restore(self, positions: Sequence[Position]) -> dict[str, str | None]:
        """Resume the files of a previous run; call once, before the first poll.

        Each position is looked up by identity (at its path or renamed within its directory), then by
        content (a copytruncate copy); a file found is followed under its old path from its offset, so the
        next poll finishes it and then opens whatever is at the path now from the start. Positions whose
        path no longer matches the patterns are dropped. ``from_end`` no longer applies: a file the
        positions do not know appeared while the exporter was down and is read from the start.

        Returns, per path, how its file was found (``same``, ``renamed``, ``copied``) or None (gone:
        deleted, truncated or replaced while the exporter was down).
        """
        wanted = [p for p in positions if self._discovery.wanted(p.path)]
        claimed: set[Ident] = {st.ident for st in self._streams.values()}
        hits: dict[int, tuple[str, str, FileStream]] = {}
        for by_content in (False, True):
            for i, pos in enumerate(wanted):
                if i not in hits:
                    hit = locate(pos, claimed, by_content=by_content)
                    if hit is not None:
                        hits[i] = (hit[0], hit[2], self._resumed(pos, hit[0], hit[1]))
        result: dict[str, str | None] = {}
        for i, pos in enumerate(wanted):
            found = hits.get(i)
            if found is None or pos.path in self._streams:
                if found is not None:
                    found[2].close()
                    self._holding.pop(found[2], None)
                self._vacated.add(pos.path)  # whatever is there now is a new file
                result[pos.path] = None
                continue
            path, how, st = found
            with self._lock:
                self._streams[pos.path] = st
            if path != pos.path:
                self._vacated.add(pos.path)
            result[pos.path] = how
        if self._start_paths is None:
            self._start_paths = set()
        return result

    def _resumed(self, pos: Position, path: str, fd: int) -> FileStream:
        """The stream of a located file, at its saved offset; parked at once when descriptors are short
        (reopened from its offset when its turn comes)."""
        s = os.fstat(fd)
        n = min(pos.offset, FP_BYTES)
        splitter = LineSplitter(self._max, pos.offset, pos.lineno, pos.skip)
        st = FileStream(pos.path, fd, (s.st_dev, s.st_ino), real_dir(path), self._sink, splitter,
                        fp=os.pread(fd, n, pos.offset - n), head=os.pread(fd, n, 0))
        self._holding[st] = None
        if self.max_open_files is not None and len(self._holding) > self.max_open_files:
            self._park(st)
        return st

    # ----------------------------------------------------------------- reading

    def _service(self, st: FileStream) -> None:
        active = st.active
        st.service(self._chunk, self._stop)
        if st.active != active and st in self._holding:
            self._holding.move_to_end(st)

    def _guarded(self, fn: Callable[[FileStream], None], st: FileStream) -> None:
        """An I/O error on one file (EIO, ESTALE) must not stop the others; logged once per errno."""
        try:
            fn(st)
        except OSError as err:
            if self._read_errors.get(st.path) != err.errno:
                self._read_errors[st.path] = err.errno
                log.warning("reading %s failed: %s", st.path, err)
        else:
            self._read_errors.pop(st.path, None)

    def _drain(self, st: FileStream) -> None:
        st.drain(self._chunk, self._stop)

    # ----------------------------------------------------------------- the descriptor bound

    def _full(self) -> bool:
        return self.max_open_files is not None and len(self._holding) >= self.max_open_files

    def _park(self, st: FileStream) -> None:
        """Close ``st``'s descriptor (lock held by the caller)."""
        self._holding.pop(st, None)
        st.park()

    def _make_room(self, keep: FileStream | None = None) -> bool:
        """A descriptor is free, or one is freed by parking the least recently read stream that can be."""
        if not self._full():
            return True
        for st in self._holding:
            if st is not keep and st.parkable():
                with self._lock:
                    self._park(st)
                return True
        return False

    def _shrink(self, err: OSError) -> None:
        """The process ran out of descriptors (other users of them, or a bound set too high): hold fewer."""
        bound = max(1, len(self._holding) - 32)
        if self.max_open_files is None or bound < self.max_open_files:
            log.warning("opening a file failed with %s while %d file(s) are open: holding at most %d from now on "
                        "(raise the descriptor limit, ulimit -n, or lower --max-open-files)", err, len(self._holding),
                        bound)
            self.max_open_files = bound
        while len(self._holding) >= self.max_open_files and self._make_room():
            pass

    def _service_parked(self) -> None:
        """Reopen (by path, same identity) the parked files that changed, and read them."""
        sizes = self._discovery.sizes
        for st in list(self._streams.values()):
            if not st.parked or not st.changed(sizes.get(st.path)):
                continue
            if self._stop is not None and self._stop.is_set():
                return
            if not self._make_room(st):
                return  # every descriptor holds a partial line: the next poll continues
            if not st.reopen(st.path):
                continue  # replaced since the stat: the next poll's reconcile handles it
            with self._lock:
                self._holding[st] = None
            st.seen = None
            self._guarded(self._service, st)

    # ----------------------------------------------------------------- discovery and identity

    def _track_start_paths(self, found: dict[str, Ident]) -> None:
        """from_end applies to files present at the first poll only, even if they open later."""
        if self._start_paths is None:
            self._start_paths = set(found) if self._from_end else set()
        elif self._start_paths:
            self._start_paths.intersection_update(found)

    def _reconcile(self, found: dict[str, Ident]) -> None:
        """Re-key followed files to where their identity now lives; retire the ones replaced or deleted."""
        where: dict[Ident, str] = {}
        for path, ident in found.items():
            where.setdefault(ident, path)
        keep: dict[str, FileStream] = {}
        retired: list[FileStream] = []
        unseen: dict[Ident, FileStream] = {}
        for path, st in self._streams.items():
            if found.get(path) == st.ident:
                keep[path] = st
            elif st.ident in where:
                self._move(st, where[st.ident])
                keep[st.path] = st
            elif path not in found and not st.parked and st.still_linked():
                keep[path] = st  # renamed away: a writer may still append to it
            elif self._globbing and not st.parked and st.still_linked():
                unseen[st.ident] = st  # replaced at its path, renamed to a name this listing may have missed
                self._vacated.add(path)
                self._guarded(self._drain, st)
            else:
                retired.append(st)
        now = time.monotonic()
        since = {ident: self._unseen_since.get(ident, now) for ident in unseen}
        for ident, st in self._unseen.items():  # found under a new name, still missed (for a while), or done
            dest = where.get(ident)
            if dest is not None and dest not in keep:
                st.path, st.watch_dir = dest, real_dir(dest)
                self._vacated.discard(dest)
                keep[dest] = st
            elif (dest is None and not st.parked and st.still_linked()
                  and now - self._unseen_since.get(ident, now) < UNSEEN_GRACE):
                unseen[ident] = st
                since[ident] = self._unseen_since.get(ident, now)
            else:
                retired.append(st)
        with self._lock:
            self._streams = keep
            self._unseen = unseen
        self._unseen_since = since
        for st in retired:
            self._retire(st)

    def _move(self, st: FileStream, dest: str) -> None:
        self._vacated.add(st.path)
        self._vacated.discard(dest)
        st.path = dest
        st.watch_dir = real_dir(dest)

    def _retire(self, st: FileStream) -> None:
        """The path now names another file or nothing: finish the old fd, drop its partial line."""
        if st.parked:
            self._find_parked(st)  # renamed out of the patterns while parked: finish it if it is still there
        if not st.parked:
            self._guarded(self._drain, st)
        st.discard_tail()
        with self._lock:
            self._holding.pop(st, None)
            st.close()
        self._vacated.add(st.path)

    def _find_parked(self, st: FileStream) -> None:
        """Reopen a parked file by identity and fingerprints in its directories (one descriptor over the bound
        for a moment, released by the caller)."""
        position = self._position(st)
        if position is None:
            return
        claimed = {other.ident for other in self._streams.values() if other is not st}
        hit = locate(position, claimed, by_content=False)
        if hit is not None:
            st.fd = hit[1]

    def _open_new(self, found: dict[str, Ident]) -> None:
        followed = {st.ident for st in [*self._streams.values(), *self._unseen.values()]}
        announced = 0
        for path, ident in found.items():
            if path in self._streams or ident in followed:
                continue
            if not self._make_room():
                break  # every descriptor holds a partial line: the next poll continues
            st = self._open(path)
            if st is None:
                continue
            if st.ident in followed:  # replaced between stat and open by a file we already follow
                st.close()
                continue
            followed.add(st.ident)
            with self._lock:
                self._streams[path] = st
                self._holding[st] = None
            announced += 1
            (log.info if announced <= FOLLOWED_LOGGED else log.debug)("following %s", path)
            if path in self._vacated:
                self._vacated.discard(path)
                self._sink.on_rotation(path)
            self._guarded(self._drain, st)
        if announced > FOLLOWED_LOGGED:
            log.info("following %d more file(s) (--log-level debug names them)", announced - FOLLOWED_LOGGED)

    def _open(self, path: str) -> FileStream | None:
        try:
            fd = os.open(path, OPEN_FLAGS)  # O_NONBLOCK: a FIFO swapped in between stat and open must not block
        except FileNotFoundError:
            return None
        except OSError as err:
            if err.errno in OUT_OF_FDS and self._holding:
                self._shrink(err)  # not this file's fault: hold fewer, the next poll opens it
                return None
            if self._open_errors.get(path) != err.errno:
                self._open_errors[path] = err.errno
                self._sink.on_open_error(path, err)
            return None
        self._open_errors.pop(path, None)
        try:
            s = os.fstat(fd)
            if not stat.S_ISREG(s.st_mode):
                os.close(fd)
                return None
            st = FileStream(path, fd, (s.st_dev, s.st_ino), real_dir(path), self._sink, LineSplitter(self._max))
            if self._start_paths and path in self._start_paths:
                self._start_paths.discard(path)
                st.seek_end(s.st_size)
        except BaseException:
            os.close(fd)
            raise
        return st

    # ----------------------------------------------------------------- what each pattern yields

    def _update_states(self) -> None:
        """Each pattern's state after this poll; a change is logged (a bad state with what to do)."""
        discovery = self._discovery
        states: dict[str, tuple[str, str]] = {}
        for pattern in discovery.patterns:
            paths = discovery.matches.get(pattern, [])
            failing = [p for p in paths if p in self._open_errors]
            if failing:
                code = self._open_errors[failing[0]]
                states[pattern] = (UNREADABLE, f"{failing[0]}: {os.strerror(code) if code else 'cannot open'}")
            elif paths:
                states[pattern] = (FOLLOWING, str(len(paths)))
            else:
                states[pattern] = discovery.unmatched.get(pattern, (MISSING, ""))
        before, self._states = self._states, states
        for pattern, (state, detail) in states.items():
            if before.get(pattern, ("", ""))[0] != state:
                _log_state(pattern, state, detail)

    # ----------------------------------------------------------------- wake-ups

    def _log_poll_error(self, exc: Exception) -> None:
        """Full traceback once per distinct error; a sink bug must not flood the log at many polls a second."""
        key = f"{type(exc).__name__}: {exc}"
        if key != self._last_poll_error:
            self._last_poll_error = key
            log.exception("tailer poll failed")
        else:
            log.debug("tailer poll failed again: %s", key)

    def _wake_on_stop(self, stop: threading.Event) -> None:
        stop.wait()
        self._wake.set()
        self._hurry.set()

    def _watch_dirs(self) -> list[str]:
        return [*self._discovery.parent_dirs(), *(st.watch_dir for st in list(self._streams.values()))]


def _log_state(pattern: str, state: str, detail: str) -> None:
    if state == FOLLOWING:
        log.info("--file %s: following %s file(s)", pattern, detail)
    elif state == MISSING:
        log.warning("--file %s matches no file (yet): nothing is read from it until one appears. Check the path "
                    "and its spelling, and that its volume is mounted here; --require-files makes this an error "
                    "at start-up", pattern)
    elif state == NOT_A_FILE:
        log.warning("--file %s names %s, which is not a regular file (a directory?): nothing is read from it. "
                    "Name the files, e.g. --file '%s'", pattern, detail or pattern,
                    os.path.join(detail or pattern, "*.jsonl"))
    else:
        log.warning("--file %s cannot be read (%s): nothing is read from it until it can. Give the exporter's "
                    "user (uid %d) read access to the file and its directories; it is retried on every poll",
                    pattern, detail, os.getuid() if hasattr(os, "getuid") else -1)
