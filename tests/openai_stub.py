"""A tiny OpenAI-compatible chat server on 127.0.0.1 for driving real clients (aider, litellm, a LiteLLM proxy).

It answers ``POST /v1/chat/completions`` (and ``/chat/completions``) with fixed usage numbers, both
non-streaming and as server-sent events (with a final usage chunk only when the request asks for it with
``stream_options.include_usage``, as OpenAI does), and can answer with HTTP errors and slow replies:

* ``fail_status``: answer every call with this HTTP status (the simple switch);
* a script in the last user message, ``[[stub: 429, ok]]``: what the stub does on the 1st, 2nd, …
  attempt carrying that same message (the last item repeats). Items: ``ok``, an HTTP status (``429``,
  ``400``, ``500``, …) or ``slow=SECONDS`` (wait, then answer; a client that gave up earlier has timed
  out). Retries of one client call resend the same message, so a script plays out one call's attempts
  whatever path they take (LiteLLM's router, its proxy, a client's own retries).

Every attempt is kept in ``attempts`` (what was asked and what the stub answered), so a test can hold a
client's ledger and an exporter's metrics against what the upstream really did. Standard library only;
one thread per connection.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROMPT_TOKENS = 321
COMPLETION_TOKENS = 12
REPLY = "Hello from the stub."

_SCRIPT = re.compile(r"\[\[stub:([^\]]*)\]\]")


@dataclass(frozen=True)
class Attempt:
    """One request the stub received and how it answered (``outcome``: ``ok`` or an HTTP status)."""

    key: str  # the script's message text ("" without a script)
    model: str
    stream: bool
    include_usage: bool
    outcome: str  # "ok", an HTTP status, or "slow" (answered ok after ``delay`` seconds)
    delay: float = 0.0


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):  # content parts
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out and hung up before a slow reply is expected here: no traceback."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class OpenAIStub:
    """``with OpenAIStub() as stub: stub.base_url`` → ``http://127.0.0.1:PORT/v1``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []  # request bodies, in arrival order
        self.attempts: list[Attempt] = []  # the same requests, with the stub's answer
        self.fail_status: int | None = None  # answer every call with this HTTP status when set
        self._seen: dict[str, int] = {}  # script key → attempts so far
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
                outcome = stub._decide(body)
                if outcome.startswith("slow="):
                    time.sleep(float(outcome[5:]))
                    outcome = "ok"
                if outcome != "ok":
                    self._json(int(outcome), {"error": {
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

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, name="openai-stub", daemon=True)

    def _decide(self, body: dict[str, Any]) -> str:
        """Record the request and pick its answer: the message's script, else ``fail_status``, else ok."""
        text = _last_user_text(body)
        match = _SCRIPT.search(text)
        with self._lock:
            self.requests.append(body)
            if match:
                steps = [step.strip() for step in match.group(1).split(",") if step.strip()] or ["ok"]
                n = self._seen.get(text, 0)
                self._seen[text] = n + 1
                outcome = steps[min(n, len(steps) - 1)]
            else:
                outcome = "ok" if self.fail_status is None else str(self.fail_status)
            slow = outcome.startswith("slow=")
            self.attempts.append(Attempt(
                key=text if match else "", model=str(body.get("model", "")), stream=bool(body.get("stream")),
                include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
                outcome="slow" if slow else outcome, delay=float(outcome[5:]) if slow else 0.0))
        return outcome

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
