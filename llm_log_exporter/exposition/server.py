"""HTTP(S) endpoint: /metrics (text or OpenMetrics by negotiation), /healthz, /readyz, and the pages of
``pages.py`` (the landing page at /, /api/v1/usage), all behind the same authentication.

Not prometheus-client's server: its TLS handshake runs in the single accept loop, so one client that
opens a TLS connection and says nothing stalls every scrape. Here the accept loop only accepts; each
connection gets a worker thread that does the TLS handshake, reads requests and writes responses
under deadlines (``read_timeout`` for the handshake, each request's head and keep-alive idling;
``write_timeout`` for each response), and at most ``max_connections`` connections are served at
once — further ones wait in the listen backlog, as with Go's LimitListener.

Idle connections never delay a scrape: at the limit, the connection idle longest (waiting for a request,
or for its first byte) is closed to make room, and a new connection that sends nothing is closed after
``SILENT_TIMEOUT``. When the process runs out of descriptors, ``accept`` fails with EMFILE: one
descriptor kept in reserve is given up to accept (and serve) one connection at a time, and the loop
backs off instead of spinning, so /metrics, /healthz and /readyz keep answering.
"""

from __future__ import annotations

import contextlib
import errno
import io
import ipaddress
import logging
import os
import select
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from prometheus_client.exposition import gzip_accepted
from prometheus_client.registry import CollectorRegistry

from llm_log_exporter.aggregate.ingest import RateLimitedLog
from llm_log_exporter.exposition.collector import Owner, Snapshot
from llm_log_exporter.exposition.pages import API_PATH, Pages
from llm_log_exporter.exposition.render import Renderer, negotiate
from llm_log_exporter.exposition.webconfig import WebConfig, WebConfigSource

log = logging.getLogger("llm_log_exporter")

_PATHS = ("/", "/metrics", "/healthz", "/readyz", API_PATH)
_LANDING = b"""<html><head><title>llm-log-exporter</title></head><body>
<h1>llm-log-exporter</h1><p><a href="/metrics">Metrics</a> &middot; <a href="/healthz">healthz</a>
&middot; <a href="/readyz">readyz</a></p></body></html>
"""
_PLAIN = WebConfig()
ERROR_REASONS = ("handshake_timeout", "handshake_failed", "client_cert_rejected", "read_timeout", "auth_failed",
                 "evicted_idle", "fd_exhausted")
SILENT_TIMEOUT = 2.0  # seconds a new connection may stay silent (at most --web.read-timeout)
_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return host == "localhost"


def exposure_warning(host: str, config: WebConfig) -> str | None:
    """What to warn about when listening on ``host`` (an address) with ``config``; None when fine."""
    if is_loopback(host):
        return None
    if not config.tls and config.auth is None:
        return (f"listening on {host or '*'} without TLS or basic auth: anyone who can reach this port can read "
                "the metrics (tenants, models, spend); see --web.config.file")
    if not config.tls:
        return f"basic auth on {host or '*'} without TLS sends passwords in clear text"
    return None


class ServerStats:
    """Connection counters for the self-metrics; plain ints updated under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.accepted = 0
        self.errors = dict.fromkeys(ERROR_REASONS, 0)

    def error(self, reason: str) -> None:
        with self.lock:
            self.errors[reason] += 1


class _Conn:
    """One served connection: its current socket (the TLS one after the handshake) and since when it has
    been waiting for a request (None while a request is read or answered)."""

    __slots__ = ("evicted", "idle_since", "sock")

    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock = sock
        self.idle_since: float | None = now
        self.evicted = False


def _nothing() -> None:
    return None


class MetricsServer:
    """Bound at construction (so a port in use fails early); ``serve_forever`` runs the accept loop."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        ready: threading.Event,
        *,
        web: WebConfigSource | None = None,
        max_connections: int = 64,
        read_timeout: float = 10.0,
        write_timeout: float = 30.0,
        stopping: threading.Event | None = None,
        pages: Pages | None = None,
    ) -> None:
        self.registry = registry
        self.pages = pages
        self.renderer = Renderer()  # both formats; keeps rendered series and compressed chunks between scrapes
        # Around each /metrics render: the daemon's heap policy (heap.py); none by default.
        self.scrape_scope: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext
        # Before each /metrics render: the daemon's wait for the files to be read up to now (--scrape-catch-up).
        self.before_scrape: Callable[[], object] = _nothing
        self.ready = ready
        self.stopping = stopping or threading.Event()  # set: shutting down, /readyz says so
        self.web = web
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.stats = ServerStats()
        self.max_connections = max_connections
        self.silent_timeout = min(SILENT_TIMEOUT, read_timeout)
        self._conns: set[_Conn] = set()
        self._cond = threading.Condition()
        self._reserve: int | None = None
        self._reserve_lock = threading.Lock()  # the accept loop gives it up, a worker takes it back
        self._restore_reserve()
        self._backoff = 0.0  # seconds to wait after an accept that found no descriptor; 0 when all is well
        self._fd_log = RateLimitedLog(60.0)
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((host, port))
            self.socket.listen(128)
            self.socket.setblocking(False)
        except BaseException:
            self.socket.close()
            raise
        self.server_address = self.socket.getsockname()
        warning = exposure_warning(self.server_address[0], self.config())
        if warning:
            log.warning("%s", warning)

    @property
    def scheme(self) -> str:
        return "https" if self.config().tls else "http"

    def config(self) -> WebConfig:
        return self.web.current() if self.web is not None else _PLAIN

    def serve_forever(self) -> None:
        self._stopped.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.socket, selectors.EVENT_READ)
                while not self._stop.is_set():
                    if not selector.select(timeout=0.2) or not self._make_room():
                        continue  # nothing pending, or every connection busy: new ones wait in the backlog
                    accepted = self._accept()
                    if accepted is None:
                        continue
                    sock, addr, reserved = accepted
                    conn = _Conn(sock, time.monotonic())
                    with self._cond:
                        self._conns.add(conn)
                    threading.Thread(target=self._connection, args=(conn, addr, reserved), name="http-conn",
                                     daemon=True).start()
        finally:
            self._stopped.set()

    def _make_room(self, limit: int | None = None) -> bool:
        """Fewer than ``limit`` (default: max_connections) connections, closing the one idle longest if need be."""
        limit = self.max_connections if limit is None else limit
        with self._cond:
            if sum(1 for c in self._conns if not c.evicted) >= limit:
                self._evict_idle()
            return self._cond.wait_for(lambda: len(self._conns) < limit, timeout=0.2)

    def _evict_idle(self) -> bool:
        """Close the connection idle longest (its worker wakes, closes it and frees its slot); lock held."""
        idle = [c for c in self._conns if not c.evicted and c.idle_since is not None]
        if not idle:
            return False
        victim = min(idle, key=lambda c: c.idle_since or 0.0)
        victim.evicted = True
        self.stats.error("evicted_idle")
        with contextlib.suppress(OSError):
            socket.socket.shutdown(victim.sock, socket.SHUT_RDWR)
        return True

    def _accept(self) -> tuple[socket.socket, tuple, bool] | None:
        """A pending connection, and whether it holds the reserved descriptor; None when there is none."""
        try:
            sock, addr = self.socket.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return None
        except OSError as err:
            if err.errno not in _OUT_OF_FDS:
                log.warning("accept failed: %s", err)
                time.sleep(0.05)
                return None
            return self._accept_on_reserve(err)
        if self._backoff:
            self._backoff = 0.0
            log.debug("file descriptors available again: connections are accepted as usual")
        with self.stats.lock:
            self.stats.accepted += 1
        return sock, addr, False

    def _accept_on_reserve(self, err: OSError) -> tuple[socket.socket, tuple, bool] | None:
        """Out of descriptors: accept one connection on the reserved descriptor, or back off."""
        self.stats.error("fd_exhausted")
        self._fd_log.warning("accept failed: %s: the process is out of file descriptors (see ulimit -n, and "
                             "--max-open-files); closing idle connections and answering from a reserved descriptor "
                             "(counted in llm_exporter_http_connection_errors_total{reason=\"fd_exhausted\"})", err)
        with self._cond:  # an idle connection's descriptor is the first to give back
            live = sum(1 for c in self._conns if not c.evicted)
        if live and self._make_room(live):
            self._backoff = self._backoff or 0.01
            return None  # its descriptor is free now: the next accept takes it
        with self._reserve_lock:
            reserve, self._reserve = self._reserve, None
        if reserve is not None:
            os.close(reserve)
            try:
                sock, addr = self.socket.accept()
            except OSError:
                self._restore_reserve()
            else:
                self._backoff = self._backoff or 0.01
                with self.stats.lock:
                    self.stats.accepted += 1
                return sock, addr, True
        # The reserve is serving a connection (or the descriptor went elsewhere): wait, growing the wait.
        self._backoff = min(max(self._backoff * 2, 0.01), 0.5)
        self._stop.wait(self._backoff)
        self._restore_reserve()
        return None

    def _restore_reserve(self) -> None:
        with self._reserve_lock:
            if self._reserve is None:
                with contextlib.suppress(OSError):  # still out of descriptors: the next EMFILE tries again
                    self._reserve = os.open(os.devnull, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))

    def shutdown(self) -> None:
        self._stop.set()
        self._stopped.wait(5)

    def server_close(self) -> None:
        self.socket.close()
        with self._reserve_lock:
            reserve, self._reserve = self._reserve, None
        if reserve is not None:
            with contextlib.suppress(OSError):
                os.close(reserve)

    # ----------------------------------------------------------------- one connection (worker thread)

    def _connection(self, conn: _Conn, addr: tuple, reserved: bool) -> None:
        with self.stats.lock:
            self.stats.open += 1
        sock = conn.sock
        try:
            config = self.config()
            sock.settimeout(self.read_timeout)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if config.ssl_context is not None:
                tls = self._handshake(sock, config)
                if tls is None:
                    return
                sock = conn.sock = tls
            _Handler(sock, addr, self, config, conn)
        except Exception as exc:  # a broken client must never take the server down
            log.debug("connection from %s: %s", addr, exc)
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            if reserved:
                self._restore_reserve()
            with self.stats.lock:
                self.stats.open -= 1
            with self._cond:
                self._conns.discard(conn)
                self._cond.notify_all()

    def _handshake(self, sock: socket.socket, config: WebConfig) -> ssl.SSLSocket | None:
        """TLS handshake bounded by read_timeout in total (CPython applies the timeout to the whole
        handshake, not per read, so a byte-a-second client cannot stretch it)."""
        assert config.ssl_context is not None
        if not _readable(sock, self.silent_timeout):
            self.stats.error("handshake_timeout")  # sent nothing, not even a ClientHello
            return None
        try:
            tls = config.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError):
            return None
        try:
            tls.do_handshake()
        except TimeoutError:
            self.stats.error("handshake_timeout")
            tls.close()
            return None
        except (ssl.SSLError, OSError, ValueError) as err:
            self.stats.error("handshake_failed")
            log.debug("TLS handshake failed: %s", err)
            tls.close()
            return None
        if config.allowed_sans and not _san_allowed(tls, config.allowed_sans):
            self.stats.error("client_cert_rejected")
            tls.close()
            return None
        return tls


def _readable(sock: socket.socket, timeout: float) -> bool:
    """Whether the peer sent something (or hung up) within ``timeout``; poll() needs no descriptor of its own."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLPRI)
    with contextlib.suppress(InterruptedError):
        return bool(poller.poll(timeout * 1000))
    return False


def _san_allowed(tls: ssl.SSLSocket, allowed: frozenset[str]) -> bool:
    cert = tls.getpeercert() or {}
    return any(value in allowed for _, value in cert.get("subjectAltName", ()))


class _DeadlineReader(io.RawIOBase):
    """Socket reads that share one deadline per request, so a slow-loris sender cannot reset it."""

    def __init__(self, sock: socket.socket, handler: _Handler) -> None:
        self._sock = sock
        self._handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        handler = self._handler
        conn = handler.conn
        try:
            now = time.monotonic()
            remaining = handler.deadline - now
            if not handler.received:  # waiting for a request: idle, and the first one must start soon
                if conn.idle_since is None:
                    conn.idle_since = now
                if handler.first:
                    remaining = min(remaining, handler.silent_until - now)
            if remaining <= 0:
                raise TimeoutError("request not received in time")
            self._sock.settimeout(remaining)
            n = self._sock.recv_into(buffer)
        except TimeoutError:
            if handler.received:  # a request started but did not finish; plain keep-alive idling is no error
                handler.server.stats.error("read_timeout")
            raise
        if n:
            conn.idle_since = None
        handler.received += n
        return n


class _Writer(io.RawIOBase):
    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self._sock = sock
        self._timeout = timeout

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self._sock.settimeout(self._timeout)
        self._sock.sendall(data)
        return len(data)


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"
    server_version = "llm-log-exporter"

    def __init__(self, sock: socket.socket, addr: tuple, server: MetricsServer, config: WebConfig,
                 conn: _Conn) -> None:
        self.config = config
        self.conn = conn
        self.deadline = time.monotonic() + server.read_timeout
        self.silent_until = time.monotonic() + server.silent_timeout  # for the first byte of the first request
        self.first = True
        self.received = 0  # bytes of the current request
        super().__init__(sock, addr, server)  # type: ignore[arg-type]

    def setup(self) -> None:
        self.connection = self.request
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self), 65536)
        self.wfile = _Writer(self.connection, self.server.write_timeout)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            self.rfile.close()

    def handle_one_request(self) -> None:
        self.deadline = time.monotonic() + self.server.read_timeout  # idle + request head
        self.received = 0
        super().handle_one_request()
        self.first = False

    def do_GET(self) -> None:
        if self._authorized():
            self._serve(send_body=True)

    def do_HEAD(self) -> None:
        if self._authorized():
            self._serve(send_body=False)

    def _not_allowed(self) -> None:
        self.close_connection = True  # the body, if any, is not read
        if not self._authorized():
            return
        path = urlsplit(self.path).path
        if path in _PATHS:
            self._reply(405, b"method not allowed\n", extra={"Allow": "GET, HEAD"})
        else:
            self._reply(404, b"not found\n")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def _authorized(self) -> bool:
        auth = self.config.auth
        if auth is None or auth.check(self.headers.get("Authorization")):
            return True
        self.server.stats.error("auth_failed")
        self._reply(401, b"Unauthorized\n", extra={"WWW-Authenticate": 'Basic realm="llm-log-exporter"'},
                    send_body=self.command != "HEAD")
        return False

    def _serve(self, send_body: bool) -> None:
        url = urlsplit(self.path)
        path = url.path
        page = self.server.pages.handle(path, url.query) if self.server.pages is not None else None
        if page is not None:
            code, body, content_type, extra = page
            self._reply(code, body, content_type, extra, send_body)
        elif path == "/metrics":
            fmt = negotiate(self.headers.get("Accept"))  # prometheus-client's rules (choose_encoder)
            compress = gzip_accepted(self.headers.get("Accept-Encoding", ""))
            self.server.before_scrape()
            with self.server.scrape_scope():
                body, compressed = self.server.renderer.scrape(self.server.registry, fmt, compress)
            self._reply(200, body, fmt.content_type, {"Content-Encoding": "gzip"} if compressed else {}, send_body)
            if compress and not compressed:
                self.server.renderer.compress_pending()  # the reply is out: compress for the scrapes to come
        elif path == "/healthz":
            self._reply(200, b"ok\n", send_body=send_body)
        elif path == "/readyz":
            if self.server.stopping.is_set():
                self._reply(503, b"shutting down\n", send_body=send_body)
            elif self.server.ready.is_set():
                self._reply(200, b"ready\n", send_body=send_body)
            else:
                self._reply(503, b"initial read in progress\n", send_body=send_body)
        elif path == "/":
            self._reply(200, _LANDING, "text/html; charset=utf-8", send_body=send_body)
        else:
            self._reply(404, b"not found\n", send_body=send_body)

    def _reply(
        self,
        code: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        extra: dict[str, str] | None = None,
        send_body: bool = True,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (*self.config.headers.items(), *(extra or {}).items()):
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Access logs stay quiet: a scrape every few seconds is not news."""


def http_owner(server: MetricsServer) -> Owner:
    """Self-metrics of the HTTP endpoint and of the web config reloads."""

    def snapshot() -> Snapshot:
        stats = server.stats
        with stats.lock:
            views: dict[str, object] = {"http_connections": stats.open, "http_accepted": stats.accepted,
                                        "http_errors": dict(stats.errors)}
        web = server.web
        if web is not None:
            views["web_reload_ok"] = 1.0 if web.last_reload_ok else 0.0
            views["web_reload_time"] = web.last_success
        return Snapshot(views=views)

    return snapshot
