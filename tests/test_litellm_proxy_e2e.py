"""A real LiteLLM proxy (1.81.10, 2 workers, default router retries) wired as deploy/kubernetes/litellm-proxy ships
it, a loopback upstream that answers 429/400/500 and slow replies, and the ``openai`` client (``max_retries=0``)
keeping a ledger of what it sent and got. The real exporter daemon follows the proxy's usage file, and a second
one reads LiteLLM's own payload (``--format litellm``) of the same calls; both are held against the ledger and
against what the upstream really answered.

One proxy per session (its start is most of this file's cost); every test here reads the same run.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from tests.helpers import ExporterProcess, Samples, value
from tests.litellm_proxy import MASTER_KEY, LiteLLMProxy
from tests.openai_stub import COMPLETION_TOKENS, PROMPT_TOKENS, REPLY, OpenAIStub

pytestmark = pytest.mark.slow

# How a client names its tenant: the three ways the proxy passes on.
TENANTS = [
    ("acme", {"metadata": {"tenant_id": "acme"}}),  # → metadata.requester_metadata.tenant_id
    ("globex", {"tags": ["tenant:globex"]}),  # top-level tags → request_tags
    ("initech", {"metadata": {"tags": ["tenant:initech"]}}),  # metadata.tags → request_tags
    ("", {}),
]
# (script for the upstream, stream, include_usage, request timeout)
BEHAVIOURS = [
    ("ok", False, False, None),
    ("ok", True, True, None),
    ("ok", True, False, None),  # the client does not ask for usage: LiteLLM estimates the tokens
    ("429, ok", False, False, None),
    ("429, ok", True, True, None),
    ("429", False, False, None),  # retried twice by the router, then the client gets the 429
    ("429", True, False, None),
    ("500, 429, ok", False, False, None),  # LiteLLM's hooks never see the non-streaming call's 2nd attempt
    ("500", True, True, None),
    ("400", False, False, None),  # not retried
    ("400", True, False, None),
    ("slow=4, ok", False, False, 1.5),  # the first attempt times out
    ("slow=0.3", True, True, None),  # a slow success
]
MODELS = ("gpt-4o-mini", "chat-default")  # the example's two model names; chat-default is an alias
ERROR_TYPES = {"429": "rate_limit", "500": "server_error", "400": "bad_request", "slow": "timeout", "ok": "timeout"}


@dataclass
class Call:
    key: str  # the message, unique per call (the upstream's script key)
    model: str
    tenant: str
    stream: bool
    include_usage: bool
    api_key: str = MASTER_KEY
    timeout: float | None = None
    extra: dict | None = None
    ok: bool | None = None
    status_code: int | None = None
    usage: tuple[int, int] | None = None  # what the client was told, when it was told

    @property
    def status(self) -> str:
        return "success" if self.ok else "failure"

    @property
    def label(self) -> str:
        """The ``model`` label: the name sent, unless the proxy rejected the call before routing it."""
        return self.model if self.api_key == MASTER_KEY and self.model in MODELS else "unknown"


def plan() -> list[Call]:
    calls = []
    for i, (script, stream, include_usage, timeout) in enumerate(BEHAVIOURS * len(MODELS)):
        tenant, extra = TENANTS[i % len(TENANTS)]
        calls.append(Call(f"call {i} [[stub: {script}]]", MODELS[i // len(BEHAVIOURS)], tenant, stream,
                          include_usage, timeout=timeout, extra=extra))
    # Failures inside the proxy, before any upstream: a wrong key (no database: LiteLLM answers 400) and a model
    # the proxy does not have (the name must not become a label beyond --max-models).
    calls.append(Call("rejected key [[stub: ok]]", "chat-default", "acme", False, False, api_key="sk-wrong",
                      extra=TENANTS[0][1]))
    calls.append(Call("unknown model [[stub: ok]]", "no-such-model", "", False, False))
    return calls


def send(base_url: str, call: Call) -> Call:
    client = openai.OpenAI(base_url=base_url, api_key=call.api_key, max_retries=0, timeout=120)
    body = dict(call.extra or {})
    if call.timeout is not None:
        body["timeout"] = call.timeout  # the proxy's timeout for each upstream attempt
    kwargs: dict = {"model": call.model, "messages": [{"role": "user", "content": call.key}], "stream": call.stream,
                    "extra_body": body or None}
    if call.include_usage:
        kwargs["stream_options"] = {"include_usage": True}
    try:
        response = client.chat.completions.create(**kwargs)
        usage = None
        if call.stream:
            for chunk in response:
                usage = chunk.usage or usage
        else:
            usage = response.usage
        call.ok = True
        call.usage = (usage.prompt_tokens, usage.completion_tokens) if usage is not None else None
    except openai.APIStatusError as err:
        call.ok, call.status_code = False, err.status_code
    return call


@dataclass
class Run:
    calls: list[Call]
    attempts: dict[str, list[str]]  # call key → the upstream's answers, in order
    usage_log: Path
    payload_log: Path
    from_usage: Samples  # the daemon following the proxy's usage file
    from_payload: Samples  # the daemon reading LiteLLM's payload of the same calls
    startup_seconds: float
    calls_seconds: float


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def requests_of(lines_: list[dict]) -> list[dict]:
    return [line for line in lines_ if line["event"] == "request"]


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("litellm-proxy")
    usage_log, payload_log = tmp / "usage.jsonl", tmp / "payload.jsonl"
    usage_log.touch()
    calls = plan()
    with OpenAIStub() as stub:
        proxy = LiteLLMProxy(tmp / "proxy", stub.base_url, usage_log, payload_log, workers=2)
        try:
            proxy.start()
            with ExporterProcess(["--file", str(usage_log), "--poll-interval", "0.2"]) as follower:
                follower.wait_ready()
                began = time.monotonic()
                with ThreadPoolExecutor(10) as pool:
                    calls = list(pool.map(lambda c: send(proxy.url, c), calls))
                calls_seconds = time.monotonic() - began
                # Success lines are written by LiteLLM's logging worker after the reply: wait for the last one.
                deadline = time.monotonic() + 60
                while len(requests_of(lines(usage_log))) < len(calls) and time.monotonic() < deadline:
                    time.sleep(0.2)
                time.sleep(1.0)  # nothing more may come: a second line for a call would show below
                n = len(usage_log.read_text().splitlines())
                from_usage = follower.wait_value("llm_exporter_lines_total", n, timeout=30, result="parsed")
        finally:
            proxy.stop()
        attempts: dict[str, list[str]] = {}
        for attempt in stub.attempts:
            attempts.setdefault(attempt.key, []).append(attempt.outcome)
    # LiteLLM's payload: a failure counts as its call's outcome once --retry-window seconds pass without another
    # payload of its call; the router's back-off between attempts stays well under 15 s here.
    with ExporterProcess(["--file", str(payload_log), "--format", "litellm", "--retry-window", "15",
                          "--poll-interval", "0.2"]) as reader:
        reader.wait_ready()
        from_payload = reader.wait_value("llm_requests_total", len(calls), timeout=60)
    print(f"\nLiteLLM proxy up in {proxy.startup_seconds:.1f} s; {len(calls)} calls in {calls_seconds:.1f} s")
    figures(calls, attempts, from_usage, from_payload)
    yield Run(calls, attempts, usage_log, payload_log, from_usage, from_payload, proxy.startup_seconds,
              calls_seconds)


def figures(calls: list[Call], attempts: dict[str, list[str]], from_usage: Samples, from_payload: Samples) -> None:
    """Print the ledger beside the metrics (``pytest -s``): the closing figures of issue 13."""
    ledger = ledger_requests(calls)
    usage = by_labels(from_usage, "llm_requests_total", "model", "tenant_id", "status")
    payload = by_labels(from_payload, "llm_requests_total", "model", "tenant_id", "status")
    print(f"{'model':14} {'tenant':8} {'status':8} {'ledger':>6} {'callback':>8} {'payload':>7}")
    for key in sorted(set(ledger) | set(usage) | set(payload)):
        print(f"{key[0]:14} {key[1] or '-':8} {key[2]:8} {ledger[key]:6} {usage[key]:8} {payload[key]:7}")
    told = [c.usage for c in calls if c.usage is not None]
    print(f"calls {len(calls)}; upstream attempts {sum(len(a) for a in attempts.values())}; "
          f"client told tokens in/out {sum(u[0] for u in told)}/{sum(u[1] for u in told)} on {len(told)} calls")
    def v(samples: Samples, name: str, **labels: str) -> float:
        try:
            return value(samples, name, **labels)
        except KeyError:
            return 0.0

    for name, samples in (("callback", from_usage), ("payload", from_payload)):
        print(f"{name}: requests {v(samples, 'llm_requests_total'):.0f}, tokens in/out "
              f"{v(samples, 'llm_tokens_total', type='input'):.0f}/"
              f"{v(samples, 'llm_tokens_total', type='output'):.0f} (estimated in/out "
              f"{v(samples, 'llm_exporter_estimated_tokens_total', type='input'):.0f}/"
              f"{v(samples, 'llm_exporter_estimated_tokens_total', type='output'):.0f}), provider errors "
              f"{dict(by_labels(samples, 'llm_provider_errors_total', 'provider', 'error_type'))}, retries "
              f"{dict(by_labels(samples, 'llm_retries_total', 'provider', 'error_type'))}, rate-limit hits "
              f"{dict(by_labels(samples, 'llm_rate_limit_hits_total', 'tenant_id'))}")


def by_labels(samples: Samples, name: str, *labels: str) -> Counter:
    out: Counter = Counter()
    for (sample, label_set), v in samples.items():
        if sample == name and v:
            found = dict(label_set)
            out[tuple(found.get(label, "") for label in labels)] += int(v)
    return out


def ledger_requests(calls: list[Call]) -> Counter:
    return Counter((c.label, c.tenant, c.status) for c in calls)


def upstream_attempts(run: Run) -> tuple[Counter, Counter, Counter]:
    """From what the upstream answered: failed attempts and retried attempts by error type, 429s by tenant."""
    failed: Counter = Counter()
    retried: Counter = Counter()
    rate_limited: Counter = Counter()
    for call in run.calls:
        answers = run.attempts.get(call.key, [])
        failures = answers[:-1] if call.ok else answers  # a call that succeeded: its last attempt answered
        for i, answer in enumerate(failures):
            kind = ERROR_TYPES[answer]
            failed[kind] += 1
            if call.ok or i < len(failures) - 1:
                retried[kind] += 1
            if kind == "rate_limit":
                rate_limited[call.tenant] += 1
    return failed, retried, rate_limited


def test_the_client_saw_what_the_scripts_asked_for(run: Run) -> None:
    outcome = {c.key: (c.ok, c.status_code) for c in run.calls}
    assert outcome["call 0 [[stub: ok]]"] == (True, None)
    assert outcome["call 5 [[stub: 429]]"] == (False, 429)
    assert outcome["call 3 [[stub: 429, ok]]"] == (True, None)
    assert outcome["call 11 [[stub: slow=4, ok]]"] == (True, None)
    assert run.attempts["call 5 [[stub: 429]]"] == ["429"] * 3  # LiteLLM's default: 2 retries
    assert run.attempts["call 7 [[stub: 500, 429, ok]]"] == ["500", "429", "ok"]
    assert outcome["rejected key [[stub: ok]]"][0] is False and outcome["unknown model [[stub: ok]]"][0] is False
    assert "rejected key [[stub: ok]]" not in run.attempts and "unknown model [[stub: ok]]" not in run.attempts


def test_one_request_line_per_client_call(run: Run) -> None:
    requests = requests_of(lines(run.usage_log))
    assert len(requests) == len(run.calls)
    assert Counter((r["model"], r["tenant_id"] or "", r["status"]) for r in requests) == ledger_requests(run.calls)
    # a failed stream says so; the served model is the deployment's, the model the name the client sent
    assert Counter(r["stream"] for r in requests if r["status"] == "failure") == Counter(
        c.stream for c in run.calls if not c.ok)
    served = {r["model"]: r["served_model"] for r in requests if r["provider"]}
    assert served == {"gpt-4o-mini": "gpt-4o-mini", "chat-default": "gpt-4o-mini"}
    starts = {line["call_id"]: line["model"] for line in lines(run.usage_log) if line["event"] == "stream_start"}
    assert {r["call_id"]: r["model"] for r in requests if r["call_id"] in starts} == starts


def test_requests_by_model_tenant_and_status_match_the_ledger(run: Run) -> None:
    got = by_labels(run.from_usage, "llm_requests_total", "model", "tenant_id", "status")
    assert got == ledger_requests(run.calls)


def test_tokens_are_the_upstreams_and_estimates_are_marked(run: Run) -> None:
    told = [c for c in run.calls if c.usage is not None]
    assert all(c.usage == (PROMPT_TOKENS, COMPLETION_TOKENS) for c in told)
    estimated = [c for c in run.calls if c.ok and c.stream and not c.include_usage]
    assert len(estimated) == 2
    est_in = value(run.from_usage, "llm_exporter_estimated_tokens_total", type="input")
    est_out = value(run.from_usage, "llm_exporter_estimated_tokens_total", type="output")
    assert 0 < est_in < PROMPT_TOKENS * len(estimated)  # LiteLLM's tokenizer count of a short message
    assert value(run.from_usage, "llm_tokens_total", type="input") == PROMPT_TOKENS * len(told) + est_in
    assert value(run.from_usage, "llm_tokens_total", type="output") == COMPLETION_TOKENS * len(told) + est_out
    marked = [r for r in requests_of(lines(run.usage_log)) if r["tokens_estimated"]]
    assert len(marked) == len(estimated)
    assert sum(r["prompt_tokens"] for r in marked) == est_in


def test_failed_attempts_count_as_provider_errors_and_retries(run: Run) -> None:
    failed, retried, rate_limited = upstream_attempts(run)
    assert failed["rate_limit"] >= 18 and retried["server_error"] >= 2 and failed["timeout"] >= 2
    errors = by_labels(run.from_usage, "llm_provider_errors_total", "provider", "error_type")
    assert errors == Counter({("openai", kind): n for kind, n in failed.items()}) + Counter(
        {("", "auth"): 1, ("", "not_found"): 1})
    assert by_labels(run.from_usage, "llm_retries_total", "provider", "error_type") == Counter(
        {("openai", kind): n for kind, n in retried.items()})
    assert by_labels(run.from_usage, "llm_rate_limit_hits_total", "tenant_id") == Counter(
        {(tenant,): n for tenant, n in rate_limited.items()})


def test_streams_end_and_no_text_is_logged(run: Run) -> None:
    assert value(run.from_usage, "llm_active_streams") == 0
    assert value(run.from_usage, "llm_exporter_lines_total", result="invalid") == 0
    text = run.usage_log.read_text()
    assert "[[stub" not in text and "call 3" not in text and REPLY.split()[0] not in text
    assert "sk-" not in text  # no key either


def test_litellm_payload_gives_the_same_requests_and_tokens(run: Run) -> None:
    """LiteLLM's own payload, read with --format litellm: one request per call (its trace id ties a call's
    payloads together), the same tokens. A call the proxy rejects before reading it (the wrong key) has no
    tenant in the payload; the callback still saw it."""
    expected = ledger_requests(run.calls)
    expected[("unknown", "acme", "failure")] -= 1
    expected[("unknown", "", "failure")] += 1
    got = by_labels(run.from_payload, "llm_requests_total", "model", "tenant_id", "status")
    assert got == +expected
    for kind in ("input", "output"):
        assert value(run.from_payload, "llm_tokens_total", type=kind) == value(run.from_usage, "llm_tokens_total",
                                                                                type=kind)
    assert value(run.from_payload, "llm_exporter_estimated_tokens_total") == value(
        run.from_usage, "llm_exporter_estimated_tokens_total")
    # LiteLLM logs every failed attempt of a stream, but only the first of a non-streaming call
    logged: Counter = Counter()
    retried: Counter = Counter()
    for call in run.calls:
        answers = run.attempts.get(call.key, [])
        failures = [ERROR_TYPES[a] for a in (answers[:-1] if call.ok else answers)]
        seen = failures if call.stream else failures[:1]
        logged.update(seen)
        retried.update(seen if call.ok else seen[:-1])
    assert by_labels(run.from_payload, "llm_provider_errors_total", "provider", "error_type") == Counter(
        {("openai", kind): n for kind, n in logged.items()}) + Counter({("", "bad_request"): 1, ("", "not_found"): 1})
    assert by_labels(run.from_payload, "llm_retries_total", "provider", "error_type") == Counter(
        {("openai", kind): n for kind, n in retried.items()})
