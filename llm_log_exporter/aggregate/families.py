"""Every metric family the exporter serves, declared once, in exposition order.

A row says what Prometheus sees (name after the prefix, type, help, labels, unit, buckets) and where the
value lives. The collector renders rows from it, the state file saves and checks record slots and label-set
counts from it, ``describe()`` lets the registry reject a clashing name, ``--namespace`` renames the usage
families by its prefix, and a test holds docs/metrics.md to it. Adding a counter family means a row here
and the code that computes its value.

Where a value lives (``read``):

* ``Slots`` — a slot of every record of a *collection* (the usage collection is keyed by tenant_id,
  provider, model); a row per record, or per record and value of one extra label. A slot holding None
  gives no row. ``Keyed`` — a slot holding a mapping of the extra label's values to counts.
* ``Histogram`` — a histogram kept in every record of a collection (bucket counts, sum, count).
* ``Table`` — a slot of a table of counts keyed by the family's own labels (cache hits by tenant, …).
* ``View`` — a value its owner computes at scrape time (breaker states, lag, …); nothing to save.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from llm_log_exporter.schema import LABEL_NAME

NAMESPACE = "namespace"  # the prefix is --namespace (default "llm")
SELF = "llm_exporter"  # self-metrics keep their prefix whatever the namespace

USAGE_LABELS = ("tenant_id", "provider", "model")
# --naming otel: the OpenTelemetry GenAI semantic conventions' attributes as Prometheus labels (records of
# the "otel" collection are keyed by them), and our tenant label.
OTEL_LABELS = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type", "tenant_id")
GEN_AI = "gen_ai"  # the prefix of the OTel families, whatever --namespace says
COLLECTION_LABELS = {"usage": USAGE_LABELS, "otel": OTEL_LABELS}
NAMINGS = ("llm", "otel")


@dataclass(frozen=True)
class Slots:
    collection: str
    slots: tuple[tuple[str, str], ...]  # (value of the extra label, or "" without one; record slot)


@dataclass(frozen=True)
class Keyed:
    collection: str
    slot: str  # holds {value of the last label: count}


@dataclass(frozen=True)
class Histogram:
    collection: str
    name: str  # the record keeps <name>_sum, <name>_count and <name>_buckets
    bounds: str  # the option holding its bucket bounds
    # One family over several kept histograms, told apart by its last label: (label value, histogram name).
    split: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Table:
    table: str  # label tuple → [slot values]; several families may share a table (one key set)
    slot: str


@dataclass(frozen=True)
class View:
    name: str  # what the owner computes


Read = Union[Slots, Keyed, Histogram, Table, View]  # noqa: UP007 - a type alias evaluated at import on Python 3.10


@dataclass(frozen=True)
class Family:
    name: str  # after the prefix; a counter's without ``_total``
    type: str  # counter | gauge | histogram
    help: str
    labels: tuple[str, ...]  # in the order rows give their values
    read: Read
    owner: str  # usage | files | store | tailer | checkpoint | scrape | http (who holds the value)
    prefix: str = NAMESPACE
    unit: str = ""
    naming: str = ""  # "" in every --naming; "llm" or "otel": only in that one
    # Where a record copy keeps this family's exemplars (OpenMetrics only): the newest call per histogram
    # bucket, or per counter series; "" for none.
    exemplar: str = ""

    def exposed(self, namespace: str) -> str:
        """The family name a scrape shows (``_total`` is added to counter samples by the renderer)."""
        return f"{namespace if self.prefix == NAMESPACE else self.prefix}_{self.name}"


def _usage(name: str, typ: str, help: str, read: Read, extra: tuple[str, ...] = (), naming: str = "",
           exemplar: str = "") -> Family:
    return Family(name, typ, help, (*USAGE_LABELS, *extra), read, "usage", naming=naming, exemplar=exemplar)


def _otel(name: str, help: str, read: Histogram, unit: str, extra: tuple[str, ...] = ()) -> Family:
    return Family(name, "histogram", help, (*OTEL_LABELS, *extra), read, "usage", GEN_AI, unit, "otel")


FAMILIES: tuple[Family, ...] = (
    # --- per followed file (the store's file records)
    Family("lines", "counter", "Lines read by file and result.", ("file", "result"),
           Slots("files", (("parsed", "lines_parsed"), ("skipped", "lines_skipped"), ("invalid", "lines_invalid"))),
           "files", SELF),
    Family("invalid_lines", "counter", "Rejected lines by file and reason.", ("file", "reason"),
           Keyed("files", "invalid"), "files", SELF),
    Family("read_bytes", "counter", "Bytes read by file.", ("file",), Slots("files", (("", "read_bytes"),)),
           "files", SELF),
    Family("rotations", "counter", "File rotations noticed.", ("file",), Slots("files", (("", "rotations"),)),
           "files", SELF),
    Family("truncations", "counter", "File truncations noticed.", ("file",),
           Slots("files", (("", "truncations"),)), "files", SELF),
    Family("open_errors", "counter", "Failed attempts to open a file.", ("file",),
           Slots("files", (("", "open_errors"),)), "files", SELF),
    Family("last_event_timestamp_seconds", "gauge", "Newest event time seen in a file (epoch seconds).",
           ("file",), Slots("files", (("", "last_event_ts"),)), "files", SELF),
    Family("ready", "gauge", "1 once the initial read of existing files has finished.", (), View("ready"),
           "store", SELF),
    # A gauge named *_build_info with value 1, the node_exporter convention.
    Family("build_info", "gauge", "Build information.", ("version", "python"), View("build_info"), "store", SELF),
    # --- usage, per (tenant_id, provider, model) record; served once the initial read is done
    _usage("requests", "counter", "LLM requests by final status.",
           Slots("usage", (("success", "requests_success"), ("failure", "requests_failure"))), ("status",)),
    _usage("request_duration_seconds", "histogram", "LLM request duration in seconds.",
           Histogram("usage", "duration", "buckets"), naming="llm", exemplar="duration_exemplars"),
    _usage("time_to_first_token_seconds", "histogram", "Time to first token of streaming calls, in seconds.",
           Histogram("usage", "ttft", "ttft_buckets"), naming="llm"),
    _usage("time_per_output_token_seconds", "histogram",
           "Time per output token after the first of streaming calls with 2+ output tokens, in seconds.",
           Histogram("usage", "tpot", "tpot_buckets"), naming="llm"),
    _usage("tokens", "counter", "Tokens by type (input, output); sum over type is total tokens.",
           Slots("usage", (("input", "tokens_input"), ("output", "tokens_output"))), ("type",), naming="llm"),
    # --- the same, as the OpenTelemetry GenAI semantic conventions name them (--naming otel)
    _otel("client_token_usage", "Tokens per call by type (input, output).",
          Histogram("otel", "tokens", "token_buckets", (("input", "input_tokens"), ("output", "output_tokens"))),
          "", ("gen_ai_token_type",)),
    _otel("client_operation_duration_seconds", "GenAI operation duration in seconds.",
          Histogram("otel", "op_duration", "buckets"), "seconds"),
    _otel("server_time_to_first_token_seconds", "Time to first token of streaming calls, in seconds.",
          Histogram("otel", "op_ttft", "ttft_buckets"), "seconds"),
    _otel("server_time_per_output_token_seconds",
          "Time per output token after the first of streaming calls with 2+ output tokens, in seconds.",
          Histogram("otel", "op_tpot", "tpot_buckets"), "seconds"),
    _usage("cached_tokens", "counter", "Input tokens read from the provider's prompt cache (subset of input).",
           Slots("usage", (("", "cached_tokens"),))),
    _usage("cache_write_tokens", "counter", "Input tokens written to the provider's prompt cache (subset of input).",
           Slots("usage", (("", "cache_write_tokens"),))),
    _usage("reasoning_tokens", "counter", "Reasoning tokens (subset of output).",
           Slots("usage", (("", "reasoning_tokens"),))),
    _usage("cost_usd", "counter", "Cost in US dollars of calls whose cost is known.",
           Slots("usage", (("", "cost_usd"),)), exemplar="cost_exemplar"),
    # --- the AI-gateway view
    Family("cache_hits", "counter", "Responses served from a cache.", ("tenant_id",), Table("cache", "hits"),
           "usage"),
    Family("cache_misses", "counter", "Cache lookups that missed.", ("tenant_id",), Table("cache", "misses"),
           "usage"),
    Family("rate_limit_hits", "counter", "Requests rejected by a rate limit (gateway or provider 429).",
           ("tenant_id",), Table("rate_limits", "hits"), "usage"),
    Family("circuit_breaker_state", "gauge", "Circuit breaker per provider: 0 closed, 1 half-open, 2 open.",
           ("provider",), View("breakers"), "usage"),
    Family("provider_errors", "counter", "Failed upstream attempts (retried or final) by provider and error type.",
           ("provider", "error_type"), Table("provider_errors", "errors"), "usage"),
    Family("retries", "counter",
           "Failed upstream attempts that were retried or fallen back from, by provider and error type "
           "(a subset of provider_errors).", ("provider", "error_type"), Table("retries", "attempts"), "usage"),
    Family("active_streams", "gauge", "Streaming calls started and not yet finished.", (), View("active_streams"),
           "usage"),
    Family("budget_usage_ratio", "gauge", "Spend in the current budget period / limit (above 1 when over budget).",
           ("tenant_id",), View("budgets"), "usage"),
    Family("expired_streams", "counter", "Stream starts dropped without an end (timeout or table limit).", (),
           View("expired_streams"), "usage", SELF),
    Family("label_overflow", "counter", "Distinct label values folded into __other__ by the cardinality limits.",
           ("label",), View("label_overflow"), "usage", SELF),
    Family("cost_unknown", "counter", "Events with tokens but no cost and no price for their model.", ("model",),
           Table("cost_unknown", "events"), "usage", SELF),
    Family("estimated_tokens", "counter",
           "Tokens counted from a tokenizer's estimate, not the provider's usage (also in tokens_total).",
           ("model", "type"), Table("estimated_tokens", "tokens"), "usage", SELF),
    # --- the tailer and the state file
    Family("lag_bytes", "gauge", "Bytes written to a followed file but not read yet (size minus read offset).",
           ("file",), View("lag_bytes"), "tailer", SELF),
    Family("watched_files", "gauge", "Files currently followed (open, or closed while idle under --max-open-files).",
           (), View("watched_files"), "tailer", SELF),
    Family("file_state", "gauge", "Per --file pattern: 1 for what it yields now (following, missing, not_a_file, "
           "unreadable), 0 for the other states.", ("file", "state"), View("file_state"), "tailer", SELF),
    Family("state_saves", "counter", "Saves of the --state-file by result.", ("result",), View("state_saves"),
           "checkpoint", SELF),
    Family("state_load_info", "gauge", "How the --state-file was used at start-up (1 for the outcome).",
           ("result",), View("state_load_info"), "checkpoint", SELF),
    Family("state_repairs", "counter", "Values of the --state-file repaired at start-up (event times beyond the "
           "clock plus --max-future-skew), by part.", ("part",), View("state_repairs"), "checkpoint", SELF),
    Family("state_last_save_timestamp_seconds", "gauge", "Time of the last successful state save (epoch seconds).",
           (), View("state_last_save"), "checkpoint", SELF),
    # --- the scrape itself
    Family("scrape_errors", "counter", "Scrapes that left a family out because computing it failed (see the log).",
           ("family",), View("scrape_errors"), "scrape", SELF),
    # --- the HTTP endpoint
    Family("http_connections", "gauge", "HTTP connections being served now.", (), View("http_connections"),
           "http", SELF),
    Family("http_connections_accepted", "counter", "HTTP connections accepted.", (), View("http_accepted"),
           "http", SELF),
    Family("http_connection_errors", "counter", "Connections or requests refused, by reason.", ("reason",),
           View("http_errors"), "http", SELF),
    Family("web_config_last_reload_successful", "gauge", "1 if the last load of --web.config.file succeeded.", (),
           View("web_reload_ok"), "http", SELF),
    Family("web_config_last_reload_success_timestamp_seconds", "gauge",
           "When --web.config.file was last loaded successfully.", (), View("web_reload_time"), "http", SELF),
)

BY_NAME = {family.name: family for family in FAMILIES}


def of(owner: str) -> tuple[Family, ...]:
    return tuple(family for family in FAMILIES if family.owner == owner)


def record_slots(collection: str) -> tuple[str, ...]:
    """The slots of a collection's records (histograms aside), in table order: the record layout."""
    out: dict[str, None] = {}
    for family in FAMILIES:
        read = family.read
        if isinstance(read, Slots) and read.collection == collection:
            out.update((slot, None) for _, slot in read.slots)
        elif isinstance(read, Keyed) and read.collection == collection:
            out[read.slot] = None
    return tuple(out)


def record_histograms(collection: str) -> tuple[Histogram, ...]:
    """The histograms a collection's records keep (a split family's parts each), in table order."""
    out: list[Histogram] = []
    for family in FAMILIES:
        read = family.read
        if isinstance(read, Histogram) and read.collection == collection:
            if read.split:
                out.extend(Histogram(collection, name, read.bounds) for _, name in read.split)
            else:
                out.append(read)
    return tuple(out)


def of_naming(naming: str) -> tuple[Family, ...]:
    """The families a scrape shows with ``--naming naming``."""
    return tuple(family for family in FAMILIES if family.naming in ("", naming))


def tables() -> dict[str, tuple[str, ...]]:
    """Each table of counts → its slots, in table order; its key is the labels of the families reading it."""
    out: dict[str, dict[str, None]] = {}
    for family in FAMILIES:
        if isinstance(family.read, Table):
            out.setdefault(family.read.table, {})[family.read.slot] = None
    return {name: tuple(slots) for name, slots in out.items()}


def table_labels(table: str) -> tuple[str, ...]:
    return next(f.labels for f in FAMILIES if isinstance(f.read, Table) and f.read.table == table)


def extra_label_problem(name: str) -> str | None:
    """Why ``name`` cannot be an --extra-label (None when it can): a label name, and not one the usage
    families already use (``le`` included)."""
    if not LABEL_NAME.fullmatch(name):
        return f"{name!r} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)"
    if name == "le" or any(name in f.labels for f in FAMILIES if f.owner == "usage"):
        return f"{name!r} is a label of the usage families already"
    return None
