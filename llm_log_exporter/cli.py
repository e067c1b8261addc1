"""Command line: thin click wrappers over plain functions (every option also from LLM_LOG_EXPORTER_*)."""

from __future__ import annotations

import logging
import os
import re
import ssl
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from llm_log_exporter import __version__
from llm_log_exporter.aggregate.calls import DEFAULT_RETRY_WINDOW
from llm_log_exporter.aggregate.usage import DEFAULT_BUCKETS, DEFAULT_TPOT_BUCKETS, DEFAULT_TTFT_BUCKETS
from llm_log_exporter.parsers import names as format_names
from llm_log_exporter.parsers.options import DEFAULT_TENANT_FROM, TENANT_SOURCES, parse_tenant_from

ENV_PREFIX = "LLM_LOG_EXPORTER"
F = TypeVar("F", bound=Callable[..., Any])
_NAMESPACE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def parse_buckets(text: str) -> tuple[float, ...]:
    """``"0.1,0.5,1"`` → sorted, distinct, finite, positive bucket bounds."""
    try:
        values = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of numbers") from None
    if not values or any(not 0 < v < float("inf") for v in values):
        raise click.BadParameter(f"{text!r}: bounds must be finite and positive")
    return tuple(values)


def _buckets(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...] | None:
    return parse_buckets(value) if value is not None else None


def _skew(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from llm_log_exporter.history.timeparse import parse_duration

    try:
        return parse_duration(str(value))
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def _config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Eager: the file becomes the default_map, below flags and LLM_LOG_EXPORTER_* variables."""
    if value is not None:
        from llm_log_exporter.config_file import load_config

        loaded = load_config(value, ctx.command)
        ctx.meta["config_file"] = (value, sorted(loaded))
        ctx.default_map = {**loaded, **(ctx.default_map or {})}


def say_overrides(ctx: click.Context) -> None:
    """Name every --config key that a flag or an LLM_LOG_EXPORTER_* variable overrides (the environment
    overriding a file is easy to miss: the container image sets LLM_LOG_EXPORTER_FILE)."""
    from click.core import ParameterSource

    path, names = ctx.meta.get("config_file", ("", []))
    log = logging.getLogger("llm_log_exporter")
    options = {param.name: param for param in ctx.command.params}
    for name in names:
        source = ctx.get_parameter_source(name)
        param = options.get(name)
        if param is None or source not in (ParameterSource.ENVIRONMENT, ParameterSource.COMMANDLINE):
            continue
        key = next((opt[2:] for opt in param.opts if opt.startswith("--")), name)
        if source == ParameterSource.ENVIRONMENT:
            variable = f"{ctx.auto_envvar_prefix or ENV_PREFIX}_{name.upper()}"
            log.warning("%s=%r overrides %r in the config file %s (the environment wins over the file; unset "
                        "it to use the file's value)", variable, os.environ.get(variable, ""), key, path)
        else:
            log.info("--%s on the command line overrides %r in the config file %s", key, key, path)


def _tenant_from(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    try:
        return parse_tenant_from(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def _tz(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from llm_log_exporter.aggregate.periods import get_zone

    try:
        get_zone(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    return value


def _extra_labels(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    from llm_log_exporter.aggregate.families import extra_label_problem

    names = tuple(dict.fromkeys(value))
    for name in names:
        problem = extra_label_problem(name)
        if problem:
            raise click.BadParameter(problem)
    return names


def _namespace(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not _NAMESPACE.match(value):
        raise click.BadParameter(f"{value!r} is not a valid metric name prefix")
    return value


MAX_LINE_BYTES = click.option("--max-line-bytes", default=1 << 20, type=click.IntRange(64),
                              help="Longer lines are skipped and counted.")
TZ = click.option("--tz", default="local", callback=_tz, metavar="ZONE", envvar=f"{ENV_PREFIX}_TZ",
                  help="Time zone of days, weeks and months (budgets, report periods, the landing page): an IANA "
                       "name such as Europe/Paris, or 'local' for the machine's zone.")
PRICES = click.option("--prices", metavar="FILE",
                      help="Price table (LiteLLM model_prices_and_context_window JSON) for events without a cost; "
                           "'off' for none [default: the table bundled with an installed litellm].")

# Options that change metric values: shared by the daemon, ``replay`` and ``report`` (same names,
# same LLM_LOG_EXPORTER_* variables), so backfilled history and live data count alike.
VALUE_OPTIONS = [
    click.option("--namespace", default="llm", callback=_namespace, help="Prefix of the usage metric names."),
    click.option("--naming", default="llm", type=click.Choice(["llm", "otel"]),
                 help="Family names: ours (llm), or the OpenTelemetry GenAI semantic conventions' (otel: "
                      "gen_ai_client_token_usage, gen_ai_client_operation_duration_seconds, …; cost and gateway "
                      "families keep ours). See docs/metrics.md."),
    click.option("--format", "format", default="auto", type=click.Choice(format_names()),
                 help="Input format; auto detects it per line."),
    MAX_LINE_BYTES,
    click.option("--buckets", callback=_buckets, metavar="LIST",
                 help=f"Request duration buckets in seconds [default: {','.join(map(str, DEFAULT_BUCKETS))}]."),
    click.option("--ttft-buckets", callback=_buckets, metavar="LIST",
                 help=f"Time-to-first-token buckets [default: {','.join(map(str, DEFAULT_TTFT_BUCKETS))}]."),
    click.option("--tpot-buckets", callback=_buckets, metavar="LIST",
                 help=f"Time-per-output-token buckets [default: {','.join(map(str, DEFAULT_TPOT_BUCKETS))}]."),
    click.option("--max-tenants", default=1000, type=click.IntRange(1), help="Distinct tenant_id values kept."),
    click.option("--max-models", default=500, type=click.IntRange(1), help="Distinct model values kept."),
    click.option("--max-providers", default=100, type=click.IntRange(1), help="Distinct provider values kept."),
    click.option("--budgets", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
                 help="Per-tenant budgets (TOML); see docs/gateway.md."),
    click.option("--stream-timeout", default=600.0, type=click.FloatRange(1),
                 help="Seconds of event time after which a stream start without an end is dropped."),
    click.option("--max-future-skew", default="5m", callback=_skew, metavar="DURATION",
                 help="Lines with an event time further ahead of the clock (replay: of its now) are rejected "
                      "as future_ts, so one bad line cannot move budgets, breakers and streams."),
    click.option("--max-streams", default=10_000, type=click.IntRange(1), help="Open stream starts kept at most."),
    click.option("--retry-window", default=DEFAULT_RETRY_WINDOW, type=click.FloatRange(0),
                 help="Seconds of event time a failed LiteLLM payload waits for a later attempt of its call "
                      "(same trace id) before it counts as the call's outcome; see docs/inputs.md."),
    click.option("--breaker-failures", default=5, type=click.IntRange(1),
                 help="Consecutive provider failures that open the derived circuit breaker."),
    click.option("--breaker-cooldown", default=30.0, type=click.FloatRange(0),
                 help="Seconds of event time an open derived breaker waits before half-open."),
    click.option("--derived-breaker/--no-derived-breaker", default=True,
                 help="Derive breaker state from request outcomes where no circuit_breaker events exist."),
    click.option("--max-label-sets", default=10_000, type=click.IntRange(1),
                 help="Distinct (tenant_id, provider, model) combinations kept; the rest fold into __other__."),
    click.option("--max-label-length", default=128, type=click.IntRange(8, 4096),
                 help="Label values are cut to this many characters."),
    click.option("--extra-label", multiple=True, callback=_extra_labels, metavar="NAME",
                 help="Export this attribution label of the lines (their `labels` object: key_alias, team_alias, "
                      "user, end_user, request_model, response_model, repo, or a request metadata key) on the "
                      "usage families (repeatable; env: space-separated). Each multiplies their series; see "
                      "docs/metrics.md."),
    click.option("--max-extra-label-values", default=100, type=click.IntRange(1),
                 help="Distinct values kept per --extra-label; the rest fold into __other__."),
    PRICES,
    click.option("--tenant-from", default=",".join(DEFAULT_TENANT_FROM), callback=_tenant_from, metavar="LIST",
                 help=f"Where LiteLLM payloads keep the tenant, first match wins; from {', '.join(TENANT_SOURCES)}."),
    TZ,
]


def value_options(fn: F) -> F:
    """Apply ``VALUE_OPTIONS`` (in order) to a click command."""
    for option in reversed(VALUE_OPTIONS):
        fn = option(fn)
    return fn


@click.group(
    invoke_without_command=True,
    context_settings={"auto_envvar_prefix": ENV_PREFIX, "show_default": True, "max_content_width": 100},
)
@click.option("--config", type=click.Path(exists=True, dir_okay=False), metavar="FILE", is_eager=True,
              expose_value=False, callback=_config,
              help="YAML file of options (keys are the long option names); see `config-example`.")
@click.option("--file", "file", multiple=True, metavar="PATH",
              help="Usage log to follow (repeatable; globs allowed). Env: space-separated list.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip paths matching this glob (repeatable).")
@click.option("--host", default="localhost", help="Address to listen on (0.0.0.0 for all interfaces).")
@click.option("--port", default=9464, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--from-end", is_flag=True,
              help="Skip what the files hold at start-up (default: read from the beginning).")
@click.option("--poll", is_flag=True, help="Do not use inotify; poll only (NFS, bind mounts, overlay).")
@click.option("--poll-interval", default=1.0, type=click.FloatRange(0.01, 3600), help="Seconds between polls.")
@click.option("--max-open-files", type=click.IntRange(1), metavar="N",
              help="Files held open at once; past it, idle files are closed and reopened by path when they grow "
                   "[default: half the soft RLIMIT_NOFILE, at most 4096].")
@click.option("--require-files", is_flag=True,
              help="Exit with an error at start-up when a --file matches no readable regular file.")
@value_options
@click.option("--state-file", type=click.Path(dir_okay=False), metavar="PATH",
              help="Save read positions and metric state here (atomically) and resume from it at start-up.")
@click.option("--state-interval", default=5.0, type=click.FloatRange(0.1, 86400),
              help="Seconds between state saves (also saved on SIGTERM/SIGINT).")
@click.option("--daily-days", default=62, type=click.IntRange(1, 3660),
              help="Days of per-day sums kept for the landing page and /api/v1/usage (by event time).")
@click.option("--daily-label-sets", default=1000, type=click.IntRange(1),
              help="(tenant_id, provider, model) combinations kept per day; the rest fold into __other__.")
@click.option("--web.config.file", "web_config_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="TLS and basic auth, exporter-toolkit format (needs the [web] extra); see docs/security.md.")
@click.option("--web.max-connections", "web_max_connections", default=64, type=click.IntRange(1, 10_000),
              help="HTTP connections served at once; more wait in the listen backlog.")
@click.option("--web.read-timeout", "web_read_timeout", default=10.0, type=click.FloatRange(0.1, 3600),
              help="Seconds for the TLS handshake, for each request head, and for keep-alive idling.")
@click.option("--web.write-timeout", "web_write_timeout", default=30.0, type=click.FloatRange(0.1, 3600),
              help="Seconds to send one response.")
@click.option("--scrape-catch-up", default=0.1, type=click.FloatRange(0, 10), metavar="SECONDS",
              help="A scrape first waits at most this long for the files to be read up to the moment it began, "
                   "so it shows every line written before it; 0: serve what was read already.")
@click.option("--shutdown-delay", default=0.0, type=click.FloatRange(0, 3600), metavar="SECONDS",
              help="After SIGTERM/SIGINT keep following the files and serving /metrics this long (/readyz answers "
                   "503), so the last usage is scraped; a second signal stops at once.")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
@click.version_option(__version__, prog_name="llm-log-exporter")
@click.pass_context
def main(ctx: click.Context, file: tuple[str, ...], log_level: str, **options: object) -> None:
    """Follow LLM usage logs and serve them as Prometheus metrics.

    \b
    Example:
      llm-log-exporter --file ~/.aider/usage.jsonl --port 9464
      curl -s localhost:9464/metrics
    """
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if ctx.invoked_subcommand is not None:
        return
    say_overrides(ctx)
    if not file:
        raise click.UsageError("give at least one --file (or set LLM_LOG_EXPORTER_FILE)")
    run_daemon(file, **options)


@main.command("config-example")
@click.pass_context
def config_example(ctx: click.Context) -> None:
    """Print a commented config file with every option at its default."""
    from llm_log_exporter.config_file import example

    click.echo(example(ctx.find_root().command), nl=False)


@main.command("healthcheck")
@click.option("--timeout", default=3.0, type=click.FloatRange(0.1), help="Seconds to wait for an answer.")
@click.pass_context
def healthcheck(ctx: click.Context, timeout: float) -> None:
    """Exit 0 if the exporter configured by the same flags, env and config answers /healthz (for HEALTHCHECK)."""
    from llm_log_exporter.exposition.probe import check, probe_url

    params = ctx.find_root().params
    scheme, auth_required = "http", False
    if params.get("web_config_file"):
        from llm_log_exporter.exposition.webconfig import WebConfigError, load

        try:
            web = load(params["web_config_file"])
        except WebConfigError as err:
            raise click.ClickException(f"--web.config.file: {err}") from None
        scheme, auth_required = ("https" if web.tls else "http"), web.auth is not None
        if web.ssl_context is not None and web.ssl_context.verify_mode == ssl.CERT_REQUIRED:
            from llm_log_exporter.exposition.probe import check_handshake

            ok, message = check_handshake(params["host"], params["port"], timeout)
            click.echo(message, err=not ok)
            ctx.exit(0 if ok else 1)
    ok, message = check(probe_url(params["host"], params["port"], scheme=scheme), timeout, auth_required)
    click.echo(message, err=not ok)
    ctx.exit(0 if ok else 1)


def run_daemon(files: tuple[str, ...], **options: object) -> None:
    from llm_log_exporter.aggregate.budgets import BudgetError
    from llm_log_exporter.aggregate.prices import PriceTableError
    from llm_log_exporter.daemon import Config, Exporter, FilesUnusable
    from llm_log_exporter.exposition.heap import HeapFreezer

    options = {k: v for k, v in options.items() if v is not None}
    state_file = options.get("state_file")
    if state_file:
        options["state_file"] = state_file = os.path.expanduser(str(state_file))
        parent = os.path.dirname(os.path.abspath(state_file))
        if not os.path.isdir(parent):
            raise click.BadParameter(f"directory {parent} does not exist", param_hint="--state-file")
    config = Config(files=[os.path.expanduser(f) for f in files], **options)  # type: ignore[arg-type]
    try:
        exporter = Exporter(config)
    except BudgetError as err:
        raise click.BadParameter(str(err), param_hint="--budgets") from None
    except PriceTableError as err:
        raise click.ClickException(str(err)) from None
    except FilesUnusable as err:
        raise click.ClickException(f"--require-files: {err}") from None
    from llm_log_exporter.exposition.webconfig import WebConfigError

    try:
        exporter.bind()
    except OSError as err:
        raise click.ClickException(f"cannot listen on {config.host}:{config.port}: {err.strerror or err}") from None
    except WebConfigError as err:
        raise click.ClickException(f"--web.config.file: {err}") from None
    exporter.install_signal_handlers()
    exporter.heap = HeapFreezer()
    exporter.serve()


_PYTHON_HELP = ("Interpreter (or virtualenv directory) of the target environment, e.g. "
                "~/.local/share/pipx/venvs/aider-chat [default: this Python].")


@main.command("install-hook")
@click.option("--python", "python", metavar="PATH", help=_PYTHON_HELP)
@click.option("--labels", default="repo", metavar="LIST",
              help="Attribution labels the hook records unless $LLM_USAGE_LABELS is set: 'repo' (the name of the "
                   "git top-level directory the program works in), request metadata keys, or 'off'.")
def install_hook(python: str | None, labels: str) -> None:
    """Make every LiteLLM program in an environment (e.g. aider's) log its calls, unmodified.

    \b
    Writes a .pth file and a small hook package into the target's site-packages. The hook waits
    until the program imports litellm, then appends our callback to litellm.callbacks. Calls are
    written to $LLM_USAGE_LOG (default ~/.aider/usage.jsonl); LLM_USAGE_LOG=off disables it. Each
    line carries the repo label (export it with --extra-label repo, or `report --by repo`).
    """
    from llm_log_exporter.writer.install import HookError, install

    try:
        site, state = install(python, labels)
    except HookError as err:
        raise click.ClickException(str(err)) from None
    if not state["hook"]:
        raise click.ClickException(f"wrote the hook into {site}, but that interpreter did not load it "
                                   "(is it a site-packages directory?)")
    if state["litellm"]:
        click.echo("warning: litellm was imported at start-up by something else in that environment", err=True)
    target = os.environ.get("LLM_USAGE_LOG") or "~/.aider/usage.jsonl"
    click.echo(f"installed the LiteLLM hook into {site}")
    click.echo(f"LiteLLM calls will be appended to {target} ($LLM_USAGE_LOG; 'off' disables)")
    click.echo(f"follow them with: llm-log-exporter --file {target}")


@main.command("uninstall-hook")
@click.option("--python", "python", metavar="PATH", help=_PYTHON_HELP)
def uninstall_hook(python: str | None) -> None:
    """Remove what install-hook wrote."""
    from llm_log_exporter.writer.install import HookError, uninstall

    try:
        site, removed = uninstall(python)
    except HookError as err:
        raise click.ClickException(str(err)) from None
    if removed:
        click.echo(f"removed the LiteLLM hook from {site} ({len(removed)} files)")
    else:
        click.echo(f"no LiteLLM hook installed in {site}")


# --- history: replay and report ----------------------------------------------------------------

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_USED_LABELS = {"tenant_id", "provider", "model", "status", "type", "error_type", "le", "quantile"}


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from llm_log_exporter.history.timeparse import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    if param.name == "step" and (seconds < 1 or seconds != int(seconds)):
        raise click.BadParameter("the step must be a whole number of seconds, at least 1")
    return seconds


def _time(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from llm_log_exporter.history.timeparse import parse_time

    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def _labels(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not _LABEL_NAME.match(name) or name.startswith("__"):
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE with a valid label name")
        if name in _USED_LABELS:
            raise click.BadParameter(f"{name!r} is a label of the exporter's own series")
        labels[name] = value
    return labels


WINDOW_OPTIONS = [
    click.option("--start", callback=_time, metavar="TIME",
                 help="Window start: RFC 3339 time or date (UTC if no offset), epoch seconds, 'now' or '-7d'."),
    click.option("--end", callback=_time, metavar="TIME", help="Window end (exclusive), same forms as --start."),
]


def window_options(fn: F) -> F:
    for option in reversed(WINDOW_OPTIONS):
        fn = option(fn)
    return fn


def _inputs_error(err: Exception) -> click.BadParameter:
    return click.BadParameter(str(err), param_hint="FILE...")


def _step(ctx: click.Context, param: click.Parameter, value: str) -> float | None:
    return None if value == "auto" else _duration(ctx, param, value)


@main.command(context_settings={"auto_envvar_prefix": ENV_PREFIX})
@click.argument("inputs", nargs=-1, required=True, metavar="FILE...")
@click.option("-o", "--output", metavar="PATH", help="OpenMetrics file to write ('-' for stdout, a device or FIFO "
              "is written to directly).")
@click.option("--tsdb", "tsdb", type=click.Path(file_okay=False), metavar="DATA_DIR",
              help="Write Prometheus TSDB blocks into DATA_DIR (runs promtool from PATH, one 2 h window at a time).")
@click.option("--step", default="auto", callback=_step, metavar="DURATION",
              help="Event time between two change samples of a series (whole seconds); auto: 60s for histories "
                   "up to 7 days, the lookback (5m) beyond.")
@click.option("--lookback", default="5m", callback=_duration, metavar="DURATION",
              help="Prometheus' --query.lookback-delta: an unchanged series is written again before its last "
                   "sample is this old, so instant queries always find it.")
@window_options
@click.option("--until-now", is_flag=True,
              help="Sample up to the present and do not warn about recent events (no live exporter covers them).")
@click.option("--live-range", default="3h", callback=_duration, metavar="DURATION",
              help="Warn when events are newer than now minus this (a live exporter and Prometheus' head hold them).")
@click.option("--max-reorder", default="5m", callback=_duration, metavar="DURATION",
              help="How far back in event time a line may be behind newer lines of its file and still be sorted in.")
@click.option("--label", "labels", multiple=True, callback=_labels, metavar="NAME=VALUE",
              help="Add this label to every series (e.g. the job and instance of your live scrape); repeatable.")
@click.option("--buffer-mb", default=256, type=click.IntRange(1), help="Memory for samples before they spill to disk.")
@click.option("--spool-dir", type=click.Path(file_okay=False), help="Directory for spilled samples and TSDB windows "
              "[default: TMPDIR].")
@click.option("--jobs", default=os.cpu_count() or 1, type=click.IntRange(1, 64),
              help="promtool processes at once with --tsdb.")
@click.option("--force", is_flag=True, help="Go on even when the estimate says the backfill does not fit the disk.")
@click.option("-q", "--quiet", is_flag=True, help="No estimate, progress bar or summary (warnings still go to stderr).")
@value_options
def replay(inputs: tuple[str, ...], output: str | None, tsdb: str | None, quiet: bool, step: float | None,
           lookback: float, start: float | None, end: float | None, until_now: bool, live_range: float,
           max_reorder: float, labels: dict[str, str], buffer_mb: int, spool_dir: str | None, jobs: int,
           force: bool, **options: object) -> None:
    """Replay usage logs into Prometheus: TSDB blocks (--tsdb) or an OpenMetrics file (-o).

    FILE... are files, directories, globs or - (stdin), gzip-compressed or not, in any supported
    format. Counts exactly as the live exporter does (same options, same code). It first estimates
    the backfill (series, samples, bytes, time) and refuses one that would not fit the disk.

    \b
      llm-log-exporter replay logs/ --tsdb /var/lib/prometheus/data --end 2025-11-01
      llm-log-exporter replay logs/ -o backfill.om  # then: promtool tsdb create-blocks-from openmetrics

    See docs/replay.md for the whole recipe and how not to overlap live data.
    """
    from llm_log_exporter.aggregate.budgets import BudgetError
    from llm_log_exporter.daemon import Config, build_history, build_usage
    from llm_log_exporter.history.commands import Refused, ReplayTarget, Stopped, run_replay
    from llm_log_exporter.history.replay import MAX_LOOKBACK, ReplayOptions
    from llm_log_exporter.history.sources import InputError
    from llm_log_exporter.history.tsdb import TsdbError

    if (output is None) == (tsdb is None):
        raise click.UsageError("give either -o FILE (OpenMetrics) or --tsdb DATA_DIR (blocks)")
    if until_now and end is not None:
        raise click.UsageError("--until-now and --end exclude each other")
    if quiet:  # warnings only: no progress, no summary, no informational log lines
        logging.getLogger("llm_log_exporter").setLevel(logging.WARNING)
    if start is not None and end is not None and start >= end:
        raise click.UsageError("--start must be before --end")
    if not 1 <= lookback <= MAX_LOOKBACK or lookback != int(lookback):
        raise click.BadParameter(f"whole seconds from 1s to {MAX_LOOKBACK // 3600}h", param_hint="--lookback")
    config = Config(files=[], **{k: v for k, v in options.items() if v is not None})  # type: ignore[arg-type]
    replay_options = ReplayOptions(
        step=int(step or 0), start=start, end=end, until_now=until_now, live_range=live_range,
        max_reorder=max_reorder, labels=labels, run_bytes=buffer_mb << 20, spool_dir=spool_dir,
        lookback=int(lookback),
    )
    target = ReplayTarget(output=output, tsdb=tsdb, jobs=jobs, force=force)
    try:
        store, ingestor, collector = build_history(config)
        run_replay(inputs, target, store, ingestor, collector, config.max_line_bytes, replay_options,
                   int(step) if step else None, quiet, scratch_usage=lambda: build_usage(config))
    except InputError as err:
        raise _inputs_error(err) from None
    except BudgetError as err:
        raise click.BadParameter(str(err), param_hint="--budgets") from None
    except (Refused, TsdbError) as err:
        raise click.ClickException(str(err)) from None
    except Stopped as stop:
        click.echo(f"replay: stopped by {stop}; its temporary files were removed", err=True)
        sys.exit(128 + stop.signum)
    except OSError as err:
        raise click.ClickException(f"replay: {err.strerror or err}: {err.filename or output or tsdb}") from None


@main.command()
@click.argument("inputs", nargs=-1, metavar="[FILE]...")
@click.option("--by", default="model", metavar="KEYS",
              help="Group by model, tenant, provider and/or attribution labels of the lines such as repo, "
                   "project, key_alias (comma-separated, in column order).")
@click.option("--period", type=click.Choice(["day", "week", "month"]),
              help="Also group by day, ISO week or month (in --tz).")
@click.option("--start", metavar="TIME",
              help="Window start: today, yesterday, this-week, this-month, last-month, an RFC 3339 time or date "
                   "(in --tz if no offset), epoch seconds, 'now' or '-7d'.")
@click.option("--end", metavar="TIME",
              help="Window end (exclusive), same forms; a named window ends after it (--end yesterday: up to "
                   "today's midnight).")
@TZ
@click.option("--sort", type=click.Choice(["cost", "requests", "failed", "tokens", "p95", "name"]), default="cost",
              help="Row order within a period (highest first; name: alphabetical).")
@click.option("--top", type=click.IntRange(1), metavar="N",
              help="Show the first N rows per period; the rest are summed in one (other) row.")
@click.option("--budgets", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="Budgets TOML (as the daemon's): each tenant's spend in its current budget period against its "
                   "limit (table and json formats).")
@click.option("-f", "--format", "fmt", default="table", type=click.Choice(["table", "csv", "json"]),
              help="Output format.")
@click.option("--input-format", default="auto", type=click.Choice(format_names()), envvar=f"{ENV_PREFIX}_FORMAT",
              help="Input format (the daemon's --format); auto detects it per line.")
@MAX_LINE_BYTES
@PRICES
def report(inputs: tuple[str, ...], by: str, period: str | None, start: str | None, end: str | None, tz: str,
           sort: str, top: int | None, budgets: str | None, fmt: str, input_format: str, max_line_bytes: int,
           prices: str | None) -> None:
    """Summarise usage logs: requests, failure rate, tokens, cost and p50/p95 duration.

    Reads the same inputs as replay; with no FILE, $LLM_USAGE_LOG (default ~/.aider/usage.jsonl), the
    file the LiteLLM hook writes. Percentiles are exact (from every duration, not from buckets).

    \b
    Example:
      llm-log-exporter report --start today --by model,tenant
      llm-log-exporter report --start last-month --end last-month --by tenant --budgets budgets.toml
    """
    from llm_log_exporter.aggregate.budgets import BudgetError, load_budgets
    from llm_log_exporter.aggregate.periods import get_zone
    from llm_log_exporter.daemon import Config, build_history
    from llm_log_exporter.history.commands import run_report
    from llm_log_exporter.history.report import DIMENSIONS
    from llm_log_exporter.history.sources import InputError
    from llm_log_exporter.history.timeparse import parse_time

    zone = get_zone(tz)
    bounds: dict[str, float | None] = {}
    for name, text in (("start", start), ("end", end)):
        try:
            bounds[name] = None if text is None else parse_time(text, zone=zone, edge=name)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint=f"--{name}") from None
    if bounds["start"] is not None and bounds["end"] is not None and bounds["start"] >= bounds["end"]:
        raise click.UsageError("--start must be before --end")
    if budgets and fmt == "csv":
        raise click.UsageError("--budgets adds a table with other columns: use --format table or json")
    try:
        budget_table = load_budgets(budgets) if budgets else None
    except BudgetError as err:
        raise click.BadParameter(str(err), param_hint="--budgets") from None
    if not inputs:
        inputs = (_default_log(),)
    keys = [part.strip() for part in by.split(",") if part.strip()]
    try:
        labels = [key for key in keys if key not in DIMENSIONS]  # a LiteLLM payload fills only those asked for
        _, ingestor, _ = build_history(Config(files=[], format=input_format, prices=prices, tz=tz, extra_label=labels))
        text = run_report(inputs, ingestor, keys, period, fmt, bounds["start"], bounds["end"], max_line_bytes,
                          zone=zone, sort=sort, top=top, budgets=budget_table)
    except InputError as err:
        raise _inputs_error(err) from None
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--by") from None
    click.echo(text, nl=False)


def _default_log() -> str:
    """The file the LiteLLM hook writes ($LLM_USAGE_LOG, else ~/.aider/usage.jsonl), said on stderr."""
    from llm_log_exporter.writer.callback import DEFAULT_PATH, PATH_ENV_VAR

    configured = os.environ.get(PATH_ENV_VAR)
    if configured and configured.lower() == "off":
        raise click.UsageError(f"${PATH_ENV_VAR} is 'off' (no usage log is written): give FILE")
    path = os.path.expanduser(configured or DEFAULT_PATH)
    source = f"${PATH_ENV_VAR}" if configured else f"the default; set ${PATH_ENV_VAR} to change it"
    if not os.path.exists(path):
        raise click.UsageError(f"no FILE given and {path} ({source}) does not exist: give FILE, or run "
                               "`llm-log-exporter install-hook` so LiteLLM programs write it")
    click.echo(f"reading {path} ({source})", err=True)
    return path
