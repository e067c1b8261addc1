"""HTTP endpoint: /metrics (text or OpenMetrics by negotiation), /healthz, /readyz.

A small ThreadingHTTPServer of our own rather than prometheus-client's start_http_server, so
that health endpoints, method checks and readiness live beside the scrape.
"""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.registry import CollectorRegistry

from llm_log_exporter.exposition import render_text

_PATHS = ("/", "/metrics", "/healthz", "/readyz")
_LANDING = b"""<html><head><title>llm-log-exporter</title></head><body>
<h1>llm-log-exporter</h1><p><a href="/metrics">Metrics</a> &middot; <a href="/healthz">healthz</a>
&middot; <a href="/readyz">readyz</a></p></body></html>
"""


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, registry: CollectorRegistry, ready: threading.Event) -> None:
        self.registry = registry
        self.ready = ready
        if ":" in host:
            import socket

            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer
    protocol_version = "HTTP/1.1"
    server_version = "llm-log-exporter"

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _not_allowed(self) -> None:
        path = urlsplit(self.path).path
        if path in _PATHS:
            self._reply(405, b"method not allowed\n", extra={"Allow": "GET, HEAD"})
        else:
            self._reply(404, b"not found\n")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = _not_allowed

    def _serve(self, send_body: bool) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            if encoder is generate_latest:  # the plain text format: same bytes, rendered without Sample objects
                encoder = render_text
            body = encoder(self.server.registry)
            extra = {}
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                body = gzip.compress(body, compresslevel=1)
                extra["Content-Encoding"] = "gzip"
            self._reply(200, body, content_type, extra, send_body)
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
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Access logs stay quiet: a scrape every few seconds is not news."""
