"""Usage state: records keyed by (tenant_id, provider, model), tables of gateway counts, event-time rules.

Per-event ``labels(...).inc()`` on prometheus-client costs 1-2 µs per call; one dict lookup per event and
list-slot adds keep ingestion near the JSON parse limit. The record layout and the tables come from the
family table (``families``), so a family added there gets its slot here and in the state file by itself.
``apply`` is the one way an event changes the state, for the daemon and for replay alike.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from llm_log_exporter.aggregate import codec
from llm_log_exporter.aggregate.breaker import Breakers
from llm_log_exporter.aggregate.budgets import Budgets
from llm_log_exporter.aggregate.calls import DEFAULT_RETRY_WINDOW, Calls
from llm_log_exporter.aggregate.daily import Daily
from llm_log_exporter.aggregate.families import OTEL_LABELS, USAGE_LABELS, record_histograms, record_slots, tables
from llm_log_exporter.aggregate.labels import MAX_LABEL_LENGTH, OTHER, LabelGuard
from llm_log_exporter.aggregate.streams import Streams
from llm_log_exporter.events import (
    Attempt,
    BreakerState,
    BudgetUsage,
    CacheLookup,
    CallPart,
    Event,
    RateLimited,
    Request,
    StreamStart,
)

DEFAULT_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
DEFAULT_TTFT_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# The OpenTelemetry GenAI convention's advice for gen_ai.server.time_per_output_token.
DEFAULT_TPOT_BUCKETS: tuple[float, ...] = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5)
# The OpenTelemetry GenAI convention's advice for gen_ai.client.token.usage (fixed: the convention's).
TOKEN_BUCKETS: tuple[float, ...] = tuple(float(4 ** i) for i in range(14))  # 1, 4, 16, … 67108864
MAX_LABEL_SETS = 10_000

# Record layout: the scalar slots, then each histogram's sum and count, then each histogram's bucket counts,
# then the record's own key (exemplars follow, not saved). A changed record is noted in ``Usage.touched``, so
# a reader keeping copies re-copies only those — see ``copy_records``. Names come from the family table; the
# constants below are the hot path's.
SLOTS: tuple[str, ...] = record_slots("usage")
HISTOGRAMS: tuple[str, ...] = tuple(h.name for h in record_histograms("usage"))
LAYOUT: tuple[str, ...] = (
    *SLOTS,
    *(f"{h}_{part}" for h in HISTOGRAMS for part in ("sum", "count")),
    *(f"{h}_buckets" for h in HISTOGRAMS),
    "key",
)
INDEX = {name: i for i, name in enumerate(LAYOUT)}
SCALARS = INDEX[f"{HISTOGRAMS[0]}_buckets"]  # slots before the bucket lists: plain numbers
REQ_SUCCESS, REQ_FAILURE = INDEX["requests_success"], INDEX["requests_failure"]
TOK_IN, TOK_OUT = INDEX["tokens_input"], INDEX["tokens_output"]
TOK_CACHED, TOK_CACHE_WRITE, TOK_REASONING = INDEX["cached_tokens"], INDEX["cache_write_tokens"], \
    INDEX["reasoning_tokens"]
COST = INDEX["cost_usd"]
DUR_SUM, DUR_COUNT, DUR_BUCKETS = INDEX["duration_sum"], INDEX["duration_count"], INDEX["duration_buckets"]
TTFT_SUM, TTFT_COUNT, TTFT_BUCKETS = INDEX["ttft_sum"], INDEX["ttft_count"], INDEX["ttft_buckets"]
TPOT_SUM, TPOT_COUNT, TPOT_BUCKETS = INDEX["tpot_sum"], INDEX["tpot_count"], INDEX["tpot_buckets"]
KEY = INDEX["key"]
# Exemplars (not saved): per duration bucket and for the cost, the newest call's (call_id, trace_id, value, ts).
EX_DURATION, EX_COST = KEY + 1, KEY + 2
# Where a copy (``copy_records``: scalars, bucket lists, then the exemplars) keeps them, by the names the
# family table's ``exemplar`` field uses.
EXEMPLARS = {"duration_exemplars": KEY, "cost_exemplar": KEY + 1}

# --naming otel: records keyed by the OTel labels, holding the convention's histograms only.
_OTEL_HISTOGRAMS = record_histograms("otel")
OTEL_LAYOUT: tuple[str, ...] = (
    *(f"{h.name}_{part}" for h in _OTEL_HISTOGRAMS for part in ("sum", "count")),
    *(f"{h.name}_buckets" for h in _OTEL_HISTOGRAMS),
    "key",
)
OTEL_INDEX = {name: i for i, name in enumerate(OTEL_LAYOUT)}
OTEL_SCALARS = OTEL_INDEX[f"{_OTEL_HISTOGRAMS[0].name}_buckets"]
OTEL_KEY = OTEL_INDEX["key"]
O_DUR, O_TTFT, O_TPOT, O_IN, O_OUT = (OTEL_INDEX[f"{h}_sum"] for h in
                                      ("op_duration", "op_ttft", "op_tpot", "input_tokens", "output_tokens"))
O_BUCKETS = {at: OTEL_INDEX[f"{h}_buckets"] for at, h in
             zip((O_DUR, O_TTFT, O_TPOT, O_IN, O_OUT),
                 ("op_duration", "op_ttft", "op_tpot", "input_tokens", "output_tokens"), strict=True)}
OPERATION = "chat"  # gen_ai.operation.name: every call the lines describe is a chat / text completion

LabelKey = tuple[str, ...]  # tenant_id, provider, model, then the --extra-label values
TABLES = tables()
_HISTOGRAMS = record_histograms("usage")


class RecordCopies:
    """A reader's copies of the usage records (``Usage.copy_records``), kept from one scrape to the next."""

    __slots__ = ("at", "records")

    def __init__(self) -> None:
        self.records: list[tuple[LabelKey, list]] = []
        self.at: dict[LabelKey, int] = {}  # key → position in ``records``


class Usage:
    """Usage aggregates fed by events; not thread-safe by itself (the store's lock guards it)."""

    def __init__(
        self,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        ttft_buckets: Sequence[float] = DEFAULT_TTFT_BUCKETS,
        tpot_buckets: Sequence[float] = DEFAULT_TPOT_BUCKETS,
        max_tenants: int = 1000,
        max_models: int = 500,
        max_providers: int = 100,
        breakers: Breakers | None = None,
        budgets: Budgets | None = None,
        stream_timeout: float = 600.0,
        max_streams: int = 10_000,
        max_label_length: int = MAX_LABEL_LENGTH,
        max_label_sets: int = MAX_LABEL_SETS,
        daily: Daily | None = None,
        retry_window: float = DEFAULT_RETRY_WINDOW,
        extra_labels: Sequence[str] = (),
        max_extra_label_values: int = 100,
        naming: str = "llm",
    ) -> None:
        self.bounds = {
            "buckets": tuple(sorted(float(b) for b in buckets)),
            "ttft_buckets": tuple(sorted(float(b) for b in ttft_buckets)),
            "tpot_buckets": tuple(sorted(float(b) for b in tpot_buckets)),
            "token_buckets": TOKEN_BUCKETS,
        }
        self.buckets = self.bounds["buckets"]
        self.ttft_buckets = self.bounds["ttft_buckets"]
        self.tpot_buckets = self.bounds["tpot_buckets"]
        self.guards = {
            "tenant_id": LabelGuard("tenant_id", max_tenants, max_label_length),
            "provider": LabelGuard("provider", max_providers, max_label_length),
            "model": LabelGuard("model", max_models, max_label_length),
        }
        # Attribution labels asked for with --extra-label: more columns of the record key, each bounded.
        self.extra_labels = tuple(extra_labels)
        for name in self.extra_labels:  # "" (a line without the label) is always kept, beside the limit
            guard = self.guards[name] = LabelGuard(name, max_extra_label_values + 1, max_label_length)
            guard.seen.add("")
        self.key_labels = (*USAGE_LABELS, *self.extra_labels)
        self._key_guards = tuple(self.guards[name] for name in self.key_labels)
        # --naming otel: the OTel histograms, by (operation, provider, model, error_type, tenant, extras)
        self.otel = naming == "otel"
        self.otel_records: dict[tuple[str, ...], list] = {}
        self.otel_key_labels = (*OTEL_LABELS, *self.extra_labels)
        self.records: dict[LabelKey, list] = {}
        # Records changed since the copying reader last looked, in the order first changed (bounded by records).
        self.touched: dict[LabelKey, list] = {}
        self._copier: RecordCopies | None = None  # the reader ``touched`` is kept for
        # The per-label limits multiply (1000 x 100 x 500 by default), so the combinations are capped too.
        self.max_label_sets = max_label_sets
        self.label_set_overflow = 0
        self._keys: dict[LabelKey, list] = {}  # raw labels → record (skips sanitizing on the hot path)
        # Bounded, and only short raw values are cached: the cache must not pin hostile megabyte labels.
        self._key_cache_limit = max(1024, 2 * max_label_sets)
        self._cacheable_length = 3 * max_label_length
        # Label-set counts of the gateway view, keyed by admitted label values (see the family table).
        self.tables: dict[str, dict[tuple[str, ...], list[int]]] = {name: {} for name in TABLES}
        self.breakers = breakers or Breakers()
        self.budgets = budgets or Budgets()
        self._budgets_active = self.budgets.active  # fixed by the config: checked once, not per event
        self.streams = Streams(stream_timeout, max_streams)
        self.calls = Calls(retry_window)  # LiteLLM payloads held until their call is settled
        self.clock: float | None = None  # newest event time seen: the clock of every time rule
        self.daily = daily  # per-day sums for the landing page (the daemon's; replay and report keep none)
        # How each kind of event changes the state: ``apply`` below, or a reader's own loop over
        # ``handlers[type(event)](event)`` (one lookup and one call per event on the hot path).
        self.handlers = {
            Request: self.request,
            Attempt: self.attempt,
            CallPart: self.call_part,
            StreamStart: self.stream_start,
            RateLimited: self.rate_limited,
            BreakerState: self.breaker_state,
            BudgetUsage: self.budget,
            CacheLookup: self.cache_lookup,
        }

    # ----------------------------------------------------------------- events

    def apply(self, event: Event) -> None:
        """The one way an event changes the state (the daemon's ingestion and replay go through ``handlers``)."""
        self.handlers[type(event)](event)

    def _tick(self, ts: float | None) -> None:
        if ts is not None and (self.clock is None or ts > self.clock):
            self.clock = ts
            self.streams.clock_moved(ts)
            if ts >= self.calls.next_due:
                self._settle(self.calls.due(ts))

    def _record(self, raw: LabelKey) -> list:
        key = tuple(guard.admit(value) for guard, value in zip(self._key_guards, raw, strict=True))
        record = self.records.get(key)
        if record is None and len(self.records) >= self.max_label_sets:
            self.label_set_overflow += 1
            key = (OTHER,) * len(key)
            record = self.records.get(key)
        if record is None:
            record = [0.0] * SCALARS + [[0] * (len(self.bounds[h.bounds]) + 1) for h in _HISTOGRAMS]
            record += (key, [None] * (len(self.buckets) + 1), None)
            self.records[key] = record
            self.breakers.register(key[1])
        if sum(map(len, raw)) <= self._cacheable_length:
            if len(self._keys) >= self._key_cache_limit:
                self._keys.clear()
            self._keys[raw] = record
        return record

    def _bump(self, table: str, key: tuple[str, ...], slot: int = 0, amount: int = 1) -> None:
        rows = self.tables[table]
        row = rows.get(key)
        if row is None:
            row = rows[key] = [0] * len(TABLES[table])
        row[slot] += amount

    def unknown_cost(self, model: str) -> None:
        """An event with tokens but no cost, and no price for its model."""
        self._bump("cost_unknown", (self.guards["model"].admit(model),))

    def request(self, ev: Request, attempt_counted: bool = False) -> None:
        """A call's outcome; ``attempt_counted``: its failure was counted as an attempt already."""
        (ts, call_id, _model, _provider, _tenant, status, error_type, duration, ttft, _stream,
         prompt, completion, cached, cache_write, reasoning, cost, cache_hit, _price_tier, _served, estimated, labels,
         trace_id) = ev
        if ts is not None and (self.clock is None or ts > self.clock):
            self.clock = ts
            streams = self.streams
            if streams.starts and ts - streams.timeout >= streams.next_due:
                streams.clock_moved(ts)
            if ts >= self.calls.next_due:
                self._settle(self.calls.due(ts))
        raw = (_tenant, _provider, _model)
        if self.extra_labels:
            raw = (*raw, *((labels.get(name, "") for name in self.extra_labels) if labels else
                           ("",) * len(self.extra_labels)))
        rec = self._keys.get(raw) or self._record(raw)
        key = rec[KEY]
        self.touched[key] = rec
        if status == "success":
            rec[REQ_SUCCESS] += 1
            if key[1] in self.breakers.troubled:
                self.breakers.outcome(key[1], True, None, ts)
        else:
            rec[REQ_FAILURE] += 1
            if not attempt_counted:
                self._failure(key, error_type or "other", ts)
        if cache_hit is not None:
            self._bump("cache", (key[0],), 0 if cache_hit else 1)
        if self.streams.starts:
            self.streams.end(call_id)
        rec[TOK_IN] += prompt
        rec[TOK_OUT] += completion
        if cached:
            rec[TOK_CACHED] += cached
        if cache_write:
            rec[TOK_CACHE_WRITE] += cache_write
        if reasoning:
            rec[TOK_REASONING] += reasoning
        if estimated:
            self._estimated(key[2], prompt, completion)
        if cost is not None:
            rec[COST] += cost
            if call_id:
                rec[EX_COST] = (call_id, trace_id, cost, ts)
            if self._budgets_active:
                self.budgets.spend(key[0], cost, ts)
        tpot = None
        if duration is not None:
            rec[DUR_SUM] += duration
            rec[DUR_COUNT] += 1
            bucket = bisect_left(self.buckets, duration)
            rec[DUR_BUCKETS][bucket] += 1
            if call_id:
                rec[EX_DURATION][bucket] = (call_id, trace_id, duration, ts)
        if ttft is not None:
            rec[TTFT_SUM] += ttft
            rec[TTFT_COUNT] += 1
            rec[TTFT_BUCKETS][bisect_left(self.ttft_buckets, ttft)] += 1
            # Time per output token: the decode phase over the tokens after the first (streams only,
            # since ttft is only kept for them), as the OTel GenAI convention and vLLM define it.
            if completion >= 2 and duration is not None and duration >= ttft:
                tpot = (duration - ttft) / (completion - 1)
                rec[TPOT_SUM] += tpot
                rec[TPOT_COUNT] += 1
                rec[TPOT_BUCKETS][bisect_left(self.tpot_buckets, tpot)] += 1
        if self.daily is not None:  # an event without ts is placed at the newest time seen
            self.daily.request(key[:3], ts if ts is not None else self.clock, status, prompt, completion, cached,
                               cache_write, reasoning, cost, duration)
        if self.otel:
            self._otel(key, error_type or "other" if status != "success" else "", duration, ttft, tpot, prompt,
                       completion)

    def _otel(self, key: LabelKey, error_type: str, duration: float | None, ttft: float | None,
              tpot: float | None, prompt: int, completion: int) -> None:
        """The OTel histograms of one call (--naming otel): duration, TTFT, TPOT and token usage per call."""
        okey = (OPERATION, key[1], key[2], error_type, key[0], *key[3:])
        rec = self.otel_records.get(okey)
        if rec is None:
            if len(self.otel_records) >= self.max_label_sets:
                self.label_set_overflow += 1
                okey = (OPERATION, OTHER, OTHER, error_type, OTHER, *((OTHER,) * (len(key) - 3)))
                rec = self.otel_records.get(okey)
            if rec is None:
                rec = [0.0] * OTEL_SCALARS + [[0] * (len(self.bounds[h.bounds]) + 1) for h in _OTEL_HISTOGRAMS]
                rec.append(okey)
                self.otel_records[okey] = rec
        bounds = self.bounds
        tokens = None if error_type and not (prompt or completion) else 1  # a failure without usage has none
        for at, observed, bound in ((O_DUR, duration, "buckets"), (O_TTFT, ttft, "ttft_buckets"),
                                    (O_TPOT, tpot, "tpot_buckets"), (O_IN, tokens and prompt, "token_buckets"),
                                    (O_OUT, tokens and completion, "token_buckets")):
            if observed is not None:
                rec[at] += observed
                rec[at + 1] += 1
                rec[O_BUCKETS[at]][bisect_left(bounds[bound], observed)] += 1

    def record_of(self, ev: Request) -> list | None:
        """The record ``ev`` was counted into, when its raw labels are cached (all but very long ones):
        how replay finds what a step changed without comparing every record."""
        raw = (ev.tenant_id, ev.provider, ev.model)
        if self.extra_labels:
            labels = ev.labels or {}
            raw = (*raw, *(labels.get(name, "") for name in self.extra_labels))
        return self._keys.get(raw)

    def _failure(self, key: LabelKey, error_type: str, ts: float | None) -> None:
        """A failed upstream attempt, retried or final: provider errors, rate-limit hits, the breaker."""
        tenant, provider = key[0], key[1]
        self._bump("provider_errors", (provider, error_type))
        if error_type == "rate_limit":  # a provider 429 is a rate-limit hit for the tenant too
            self._bump("rate_limits", (tenant,))
        self.breakers.outcome(provider, False, error_type, ts)

    def _estimated(self, model: str, prompt: int, completion: int) -> None:
        if prompt:
            self._bump("estimated_tokens", (model, "input"), 0, prompt)
        if completion:
            self._bump("estimated_tokens", (model, "output"), 0, completion)

    def attempt(self, ev: Attempt) -> None:
        """A failed attempt the call went on from: a provider error and a retry, not a request."""
        self._tick(ev.ts)
        guards = self.guards
        tenant, provider = guards["tenant_id"].admit(ev.tenant_id), guards["provider"].admit(ev.provider)
        self._failure((tenant, provider, ""), ev.error_type, ev.ts)
        self._bump("retries", (provider, ev.error_type))
        if self.streams.starts:
            self.streams.end(ev.call_id)  # the next attempt writes its own stream_start

    def call_part(self, ev: CallPart) -> None:
        """One LiteLLM payload of a call (see ``calls``): a failure counts as a provider error at once; the
        request is counted when the call is settled."""
        self._tick(ev.ts)
        req = ev.request
        retried, outcome, settled = self.calls.part(ev, self.clock)
        if req.status == "failure":
            key = self._record((req.tenant_id, req.provider, req.model))[KEY]
            self._failure(key, req.error_type or "other", req.ts)
        if retried is not None:
            self._bump("retries", (self.guards["provider"].admit(retried.provider), retried.error_type or "other"))
        self._settle(settled)
        if outcome is not None:
            self.request(outcome, attempt_counted=True)

    def _settle(self, outcomes: list[Request]) -> None:
        for req in outcomes:
            self.request(req, attempt_counted=True)

    def settle_all(self) -> list[Request]:
        """Settle every held payload as its call's outcome (the end of a replay); the requests counted."""
        outcomes = self.calls.flush()
        self._settle(outcomes)
        return outcomes

    def settle_due(self, now: float) -> None:
        """Settle the held payloads whose window has passed at ``now`` — the live daemon's wall clock, so a
        quiet file does not keep a failure uncounted; event time alone settles them in replay."""
        if now >= self.calls.next_due:
            self._settle(self.calls.due(now))

    def stream_start(self, ev: StreamStart) -> None:
        self._tick(ev.ts)
        self.streams.start(ev.call_id, ev.ts if ev.ts is not None else self.clock)

    def rate_limited(self, ev: RateLimited) -> None:
        self._tick(ev.ts)
        self._bump("rate_limits", (self.guards["tenant_id"].admit(ev.tenant_id),))

    def breaker_state(self, ev: BreakerState) -> None:
        self._tick(ev.ts)
        self.breakers.explicit(self.guards["provider"].admit(ev.provider), ev.state)

    def budget(self, ev: BudgetUsage) -> None:
        self._tick(ev.ts)
        self.budgets.set_explicit(self.guards["tenant_id"].admit(ev.tenant_id), ev.spent_usd, ev.limit_usd)

    def cache_lookup(self, ev: CacheLookup) -> None:
        self._tick(ev.ts)
        self._bump("cache", (self.guards["tenant_id"].admit(ev.tenant_id),), 0 if ev.hit else 1)

    # ----------------------------------------------------------------- reading (under the store's lock)

    def copy_records(self, copies: RecordCopies | None = None) -> list[tuple[LabelKey, list]]:
        """Each record's key and values (bucket lists copied): what a scrape renders after the lock is gone.

        ``copies`` is the caller's own, kept from one call to the next: only the records changed since (noted
        in ``touched``) are copied again, every other one is handed over as the very same ``(key, values)``
        pair, so copying costs only what changed and a reader (the renderer) tells an unchanged record by
        identity alone. ``touched`` is kept for one such reader: another one's call copies everything.
        """
        if copies is None:
            return [(key, self._copy(rec)) for key, rec in self.records.items()]
        touched = self.touched
        out = copies.records
        if self._copier is copies and len(out) + len(touched) >= len(self.records):
            out = out.copy()
            at = copies.at
            for key, rec in touched.items():
                i = at.get(key)
                if i is None:  # a record new since: records only ever grow, in the order they were made
                    at[key] = len(out)
                    out.append((key, self._copy(rec)))
                else:
                    out[i] = (key, self._copy(rec))
        if self._copier is not copies or len(out) != len(self.records):
            out = [(key, self._copy(rec)) for key, rec in self.records.items()]
            copies.at = {key: i for i, (key, _) in enumerate(out)}
            self._copier = copies
        touched.clear()
        copies.records = out
        return out

    @staticmethod
    def _copy(rec: list) -> list:
        """A record's values, bucket lists copied, then its exemplars (``EXEMPLARS`` says where)."""
        return [*rec[:SCALARS], *(list(b) for b in rec[SCALARS:KEY]), list(rec[EX_DURATION]), rec[EX_COST]]

    def copy_otel_records(self) -> list[tuple[tuple[str, ...], list]]:
        return [(key, [*rec[:OTEL_SCALARS], *(list(b) for b in rec[OTEL_SCALARS:OTEL_KEY])])
                for key, rec in self.otel_records.items()]

    def views(self) -> dict[str, Any]:
        """The values computed at scrape time, as of the event clock; reading changes nothing."""
        overflow = {name: guard.overflow for name, guard in self.guards.items()}
        overflow["label_set"] = self.label_set_overflow
        if self.daily is not None:
            overflow["daily_label_set"] = self.daily.overflow
        return {
            "breakers": self.breakers.states(self.clock),
            "active_streams": len(self.streams.starts),
            "budgets": self.budgets.ratios(self.clock),
            "expired_streams": self.streams.expired,
            "label_overflow": overflow,
        }

    # ----------------------------------------------------------------- the state file

    def repair_times(self, latest: float, known: list[float]) -> dict[str, int]:
        """Undo event times beyond ``latest`` that a restored state carries (written before lines from the
        future were rejected, or by a host whose clock ran ahead); returns the values repaired by part.

        The clock goes back to the newest sound time the state knows (``known`` adds the files' newest
        events); stream starts and breaker openings beyond it are brought back to it, so they expire and
        cool down from there; a budget window of a later period than ``latest`` is dropped (its spend
        came from such a line, and it hid the current period's). Reading ``latest`` is the caller's job.
        """
        repaired = {"clock": 0, "streams": 0, "breakers": 0, "budgets": 0}
        if self.clock is None or self.clock <= latest:
            poisoned = False
        else:
            poisoned = True
            repaired["clock"] = 1
        sound = [t for t in (*known, *self.streams.starts.values(),
                             *(p.opened_at for p in self.breakers.providers.values())) if t is not None and t <= latest]
        if poisoned:
            self.clock = max(sound, default=None)
        anchor = self.clock if self.clock is not None else latest
        starts = self.streams.starts
        for call_id, start in starts.items():
            if start is not None and start > latest:
                starts[call_id] = anchor
                repaired["streams"] += 1
        if repaired["streams"]:
            self.streams.next_due = min((s for s in starts.values() if s is not None), default=math.inf)
        for entry in self.breakers.providers.values():
            if entry.opened_at > latest:
                entry.opened_at = anchor
                repaired["breakers"] += 1
        windows = self.budgets.windows
        for tenant, (start, _) in list(windows.items()):
            if start > latest:
                del windows[tenant]
                repaired["budgets"] += 1
        return {part: n for part, n in repaired.items() if n}

    def dump(self) -> dict[str, Any]:
        return {
            "layout": list(LAYOUT[:KEY]),
            "records": [[*key, rec[:SCALARS], *rec[SCALARS:KEY]] for key, rec in self.records.items()],
            "otel_records": [[*key, rec[:OTEL_SCALARS], *rec[OTEL_SCALARS:OTEL_KEY]]
                             for key, rec in self.otel_records.items()],
            "label_set_overflow": self.label_set_overflow,
            "guards": {name: guard.dump() for name, guard in self.guards.items()},
            "tables": {name: [[*key, *row] for key, row in rows.items()] for name, rows in self.tables.items()},
            "clock": self.clock,
            "breakers": self.breakers.dump(),
            "budgets": self.budgets.dump(),
            "streams": self.streams.dump(),
            "daily": self.daily.dump() if self.daily is not None else None,
            "calls": self.calls.dump(),
        }

    def load(self, data: Any) -> None:
        """Restore a dump; raises ``TypeError``/``ValueError``/``KeyError`` on anything that does not fit."""
        if data["layout"] != list(LAYOUT[:KEY]):
            raise ValueError(f"records hold {data['layout']}, this version counts {list(LAYOUT[:KEY])}")
        self._copier = None  # records are replaced: the next copy copies them all
        widths = [len(self.bounds[h.bounds]) + 1 for h in _HISTOGRAMS]
        width = len(self.key_labels)
        for row in data["records"]:
            if len(row) <= width:
                raise ValueError("a record without values")
            key, scalars, buckets = tuple(codec.text(v) for v in row[:width]), row[width], row[width + 1:]
            if len(scalars) != SCALARS or [len(b) for b in buckets] != widths:
                raise ValueError(f"record {key} has the wrong shape")
            self.records[key] = [*(float(codec.number(v)) for v in scalars),
                                 *([codec.count(v) for v in b] for b in buckets), key,
                                 [None] * (len(self.buckets) + 1), None]
            self.breakers.register(key[1])
        owidth, owidths = len(self.otel_key_labels), [len(self.bounds[h.bounds]) + 1 for h in _OTEL_HISTOGRAMS]
        for row in data["otel_records"]:
            if len(row) <= owidth:
                raise ValueError("an OTel record without values")
            key, scalars, buckets = tuple(codec.text(v) for v in row[:owidth]), row[owidth], row[owidth + 1:]
            if len(scalars) != OTEL_SCALARS or [len(b) for b in buckets] != owidths:
                raise ValueError(f"OTel record {key} has the wrong shape")
            self.otel_records[key] = [*(float(codec.number(v)) for v in scalars),
                                      *([codec.count(v) for v in b] for b in buckets), key]
        self.label_set_overflow = codec.count(data["label_set_overflow"])
        if set(data["guards"]) != set(self.guards):
            raise ValueError("label guards differ")
        for name, saved in data["guards"].items():
            self.guards[name].load(saved)
        if set(data["tables"]) != set(TABLES):
            raise ValueError(f"tables {sorted(data['tables'])}, this version keeps {sorted(TABLES)}")
        for name, rows in data["tables"].items():
            width = len(TABLES[name])
            table = self.tables[name]
            for row in rows:
                key, values = tuple(codec.text(v) for v in row[:-width]), row[-width:]
                table[key] = [codec.count(v) for v in values]
        self.clock = codec.optional(data["clock"])
        self.breakers.load(data["breakers"])
        self.budgets.load(data["budgets"])
        self.streams.load(data["streams"])
        saved_daily = data["daily"]
        if (saved_daily is None) != (self.daily is None):
            raise ValueError("per-day aggregates saved and configured differ")
        if self.daily is not None:
            self.daily.load(saved_daily)
        self.calls.load(data["calls"])
