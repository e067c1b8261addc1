"""A tiny OpenAI-compatible chat server on 127.0.0.1 for driving real clients (aider, litellm).

It answers ``POST /v1/chat/completions`` (and ``/chat/completions``) with fixed usage numbers, both
non-streaming and as server-sent events with a final usage chunk, and can be switched to answer with
an HTTP error. Standard library only; one thread per connection.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROMPT_TOKENS = 321
COMPLETION_TOKENS = 12
REPLY = "Hello from the stub."


class OpenAIStub:
    """``with OpenAIStub() as stub: stub.base_url`` → ``http://127.0.0.1:PORT/v1``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []  # request bodies, in arrival order
        self.fail_status: int | None = None  # answer every call with this HTTP status when set
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # e.g. GET /v1/models
                self._json(200, {"object": "list", "data": []})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                    return
                with stub._lock:
                    stub.requests.append(body)
                if stub.fail_status is not None:
                    self._json(stub.fail_status, {"error": {
                        "message": "stub says no", "type": "invalid_request_error", "param": None,
                        "code": "stub_error"}})
                    return
                if body.get("stream"):
                    self._stream(body)
                else:
                    self._json(200, stub.completion(body))

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                model = body.get("model", "stub")
                base = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": int(time.time()),
                        "model": model}
                chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                "finish_reason": None}]}]
                for word in REPLY.split(" "):
                    chunks.append({**base, "choices": [{"index": 0, "delta": {"content": word + " "},
                                                        "finish_reason": None}]})
                chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                if (body.get("stream_options") or {}).get("include_usage"):
                    chunks.append({**base, "choices": [], "usage": stub.usage()})
                for chunk in chunks:
                    self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    self.wfile.flush()
                    time.sleep(0.02)  # a measurable time to first token
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, name="openai-stub", daemon=True)

    @staticmethod
    def usage() -> dict[str, int]:
        return {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-stub", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "stub"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY}, "finish_reason": "stop"}],
            "usage": self.usage(),
        }

    def __enter__(self) -> OpenAIStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
