"""``--config FILE``: a YAML file whose keys are the long option names.

The file only fills click's ``default_map``, so the precedence is click's own: command-line flags,
then ``LLM_LOG_EXPORTER_*`` variables, then the file, then the built-in defaults. A ConfigMap, a
desktop file and the command line therefore configure the same options, and ``config-example`` is
generated from the same click options, so it cannot drift from them.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from typing import Any

import click

# llm-log-exporter is not on PyPI (yet): name the dependency, and the extra for an install from a checkout.
YAML_HINT = "--config needs PyYAML: pip install pyyaml (from a checkout of llm-log-exporter: pip install '.[yaml]')"
# Options that are about the command itself, not the exporter.
_NOT_KEYS = {"config", "help", "version"}
# Path-valued keys: relative values are relative to the config file's directory (as in Prometheus).
_PATH_KEYS = {"file", "budgets", "web.config.file"}


def config_options(command: click.Command) -> dict[str, click.Option]:
    """Key (the long option name, dashes) → option, for every option a config file may set."""
    out: dict[str, click.Option] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in _NOT_KEYS:
            continue
        longs = [opt for opt in param.opts if opt.startswith("--")]
        if longs:
            out[longs[0][2:]] = param
    return out


class ConfigFileError(click.ClickException):
    exit_code = 2

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"config file {path}: {message}")


def load_config(path: str, command: click.Command) -> dict[str, Any]:
    """Read the file into a ``default_map`` (option name → value in a form click converts)."""
    try:
        import yaml
    except ImportError:
        raise click.ClickException(YAML_HINT) from None
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as err:
        raise ConfigFileError(path, err.strerror or str(err)) from None
    except yaml.YAMLError as err:
        raise ConfigFileError(path, f"not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigFileError(path, "the top level must be a mapping of option names to values")
    return to_default_map(data, command, path)


def to_default_map(data: Mapping[Any, Any], command: click.Command, path: str) -> dict[str, Any]:
    options = config_options(command)
    base = os.path.dirname(os.path.abspath(path))
    out: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for raw_key, value in data.items():
        key = str(raw_key).replace("_", "-")
        option = options.get(key)
        if option is None:
            close = difflib.get_close_matches(key, options, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigFileError(path, f"unknown key {raw_key!r}{hint}")
        if key in seen:
            raise ConfigFileError(path, f"key {raw_key!r} given twice (as {seen[key]!r} too)")
        seen[key] = str(raw_key)
        if value is None:  # `key:` or `key: null` means the built-in default
            continue
        out[option.name] = _convert(key, option, value, base, path)  # type: ignore[index]
    return out


def _convert(key: str, option: click.Option, value: Any, base: str, path: str) -> Any:
    if isinstance(value, Mapping):
        raise ConfigFileError(path, f"{key}: expected a value, not a mapping")
    if option.multiple:
        items = value if isinstance(value, list) else [value]
        if any(isinstance(item, (list, Mapping)) for item in items):
            raise ConfigFileError(path, f"{key}: expected a list of values")
        values = [str(item) for item in items]
        return [_resolve(v, base) for v in values] if key in _PATH_KEYS else values
    if isinstance(value, list):
        if key.endswith("buckets"):  # a YAML list of bounds, or the command line's comma-separated form
            return ",".join(str(item) for item in value)
        raise ConfigFileError(path, f"{key}: expected a single value, not a list")
    if key in _PATH_KEYS:
        return _resolve(str(value), base)
    return value


def _resolve(value: str, base: str) -> str:
    value = os.path.expanduser(value)
    return value if os.path.isabs(value) else os.path.join(base, value)


def example(command: click.Command) -> str:
    """A commented config file holding every option at its default (JSON scalars are valid YAML)."""
    lines = [
        "# llm-log-exporter configuration file (YAML), read with --config FILE or LLM_LOG_EXPORTER_CONFIG.",
        "# Keys are the long option names (dashes or underscores). Command-line flags and",
        "# LLM_LOG_EXPORTER_* environment variables override what is set here. Relative paths",
        "# are relative to the directory of this file. Every value below is the built-in default.",
    ]
    for key, option in config_options(command).items():
        lines.append("")
        lines.extend(f"# {part}" for part in _help(option))
        lines.append(f"{key}: {_yaml_value(key, option)}")
        if key == "file":
            lines.append("#   - /var/log/llm/usage.jsonl")
        elif key == "budgets":
            lines.append(f"# {key}: /etc/llm-log-exporter/budgets.toml")
    return "\n".join(lines) + "\n"


def _help(option: click.Option) -> list[str]:
    text = " ".join((option.help or "").split())
    if isinstance(option.type, click.Choice):
        text += f" One of: {', '.join(map(str, option.type.choices))}."
    return [text.strip()] if text.strip() else []


def _yaml_value(key: str, option: click.Option) -> str:
    default = option.default
    if not isinstance(default, (str, int, float, bool, list, tuple)):
        default = None  # no default (click 8.3+ marks it with a sentinel object, older versions with None)
    if default is None and option.is_flag:
        default = False
    if key.endswith("buckets") and default is None:
        from llm_log_exporter.aggregate.usage import DEFAULT_BUCKETS, DEFAULT_TPOT_BUCKETS, DEFAULT_TTFT_BUCKETS

        default = list({"ttft": DEFAULT_TTFT_BUCKETS, "tpot": DEFAULT_TPOT_BUCKETS}.get(key[:4], DEFAULT_BUCKETS))
    if option.multiple:
        default = list(default or ())
    return json.dumps(default)
