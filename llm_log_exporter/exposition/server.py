"""HTTP(S) endpoint: /metrics (text or OpenMetrics by negotiation), /healthz, /readyz.

Not prometheus-client's server: its TLS handshake runs in the single accept loop, so one client that
opens a TLS connection and says nothing stalls every scrape. Here the accept loop only accepts; each
connection gets a worker thread that does the TLS handshake, reads requests and writes responses
under deadlines (``read_timeout`` for the handshake, each request's head and keep-alive idling;
``write_timeout`` for each response), and at most ``max_connections`` connections are served at
once — further ones wait in the listen backlog, as with Go's LimitListener.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import logging
import selectors
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from prometheus_client.exposition import gzip_accepted
from prometheus_client.registry import CollectorRegistry

from llm_log_exporter.exposition.collector import Owner, Snapshot
from llm_log_exporter.exposition.render import Renderer, negotiate
from llm_log_exporter.exposition.webconfig import WebConfig, WebConfigSource

log = logging.getLogger("llm_log_exporter")

_PATHS = ("/", "/metrics", "/healthz", "/readyz")
_LANDING = b"""<html><head><title>llm-log-exporter</title></head><body>
<h1>llm-log-exporter</h1><p><a href="/metrics">Metrics</a> &middot; <a href="/healthz">healthz</a>
&middot; <a href="/readyz">readyz</a></p></body></html>
"""
_PLAIN = WebConfig()
ERROR_REASONS = ("handshake_timeout", "handshake_failed", "client_cert_rejected", "read_timeout", "auth_failed")


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
    ) -> None:
        self.registry = registry
        self.renderer = Renderer()  # both formats; keeps rendered series and compressed chunks between scrapes
        self.ready = ready
        self.web = web
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.stats = ServerStats()
        self._slots = threading.BoundedSemaphore(max_connections)
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
                    if not self._slots.acquire(timeout=0.2):
                        continue  # every worker busy: new connections wait in the backlog
                    conn = self._accept(selector)
                    if conn is None:
                        self._slots.release()
                        continue
                    threading.Thread(target=self._connection, args=conn, name="http-conn", daemon=True).start()
        finally:
            self._stopped.set()

    def _accept(self, selector: selectors.BaseSelector) -> tuple[socket.socket, tuple] | None:
        if not selector.select(timeout=0.2):
            return None
        try:
            sock, addr = self.socket.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return None
        except OSError as err:  # EMFILE and friends: back off rather than spin
            log.warning("accept failed: %s", err)
            time.sleep(0.1)
            return None
        with self.stats.lock:
            self.stats.accepted += 1
        return sock, addr

    def shutdown(self) -> None:
        self._stop.set()
        self._stopped.wait(5)

    def server_close(self) -> None:
        self.socket.close()

    # ----------------------------------------------------------------- one connection (worker thread)

    def _connection(self, sock: socket.socket, addr: tuple) -> None:
        with self.stats.lock:
            self.stats.open += 1
        try:
            config = self.config()
            sock.settimeout(self.read_timeout)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if config.ssl_context is not None:
                tls = self._handshake(sock, config)
                if tls is None:
                    return
                sock = tls
            _Handler(sock, addr, self, config)
        except Exception as exc:  # a broken client must never take the server down
            log.debug("connection from %s: %s", addr, exc)
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with self.stats.lock:
                self.stats.open -= 1
            self._slots.release()

    def _handshake(self, sock: socket.socket, config: WebConfig) -> ssl.SSLSocket | None:
        """TLS handshake bounded by read_timeout in total (CPython applies the timeout to the whole
        handshake, not per read, so a byte-a-second client cannot stretch it)."""
        assert config.ssl_context is not None
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
        try:
            remaining = handler.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("request not received in time")
            self._sock.settimeout(remaining)
            n = self._sock.recv_into(buffer)
        except TimeoutError:
            if handler.received:  # a request started but did not finish; plain keep-alive idling is no error
                handler.server.stats.error("read_timeout")
            raise
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

    def __init__(self, sock: socket.socket, addr: tuple, server: MetricsServer, config: WebConfig) -> None:
        self.config = config
        self.deadline = time.monotonic() + server.read_timeout
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
        path = urlsplit(self.path).path
        if path == "/metrics":
            fmt = negotiate(self.headers.get("Accept"))  # prometheus-client's rules (choose_encoder)
            compress = gzip_accepted(self.headers.get("Accept-Encoding", ""))
            body = self.server.renderer.render(self.server.registry, fmt, compress)
            self._reply(200, body, fmt.content_type, {"Content-Encoding": "gzip"} if compress else {}, send_body)
        elif path == "/healthz":
            self._reply(200, b"ok\n", send_body=send_body)
        elif path == "/readyz":
            if self.server.ready.is_set():
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
