"""``install-hook`` / ``uninstall-hook``: log LiteLLM calls of an unmodified program (e.g. aider).

The target environment (aider's pipx venv) does not have this package, so three self-contained
files are written into its site-packages: the ``.pth`` that Python's ``site`` runs at start-up, the
lazy hook (``litellm_hook.py``) and the callback (``callback.py``, standard library only). The
``.pth`` line swallows every error, so a damaged install can never stop the interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click

from llm_log_exporter import __version__

HOOK_MODULE = "llm_log_exporter_hook"
CALLBACK_MODULE = "llm_log_exporter_hook_callback"
PTH_NAME = f"{HOOK_MODULE}.pth"
# Package modules the callback imports, copied beside it under hook names (the target has no package).
CALLBACK_DEPS = {"safe_open": f"{HOOK_MODULE}_safe_open"}
# A .pth line starting with "import" is executed; the try keeps a broken or half-removed hook silent.
PTH_LINE = f'import sys; exec("try:\\n import {HOOK_MODULE}\\nexcept Exception:\\n pass")\n'
HEADER = f"# Written by llm-log-exporter {__version__} install-hook; remove with `llm-log-exporter uninstall-hook`.\n"

_PACKAGE = Path(__file__).resolve().parent
_PROBE = ("import json, sys, sysconfig; print(json.dumps({'purelib': sysconfig.get_paths()['purelib'], "
          f"'hook': {HOOK_MODULE!r} in sys.modules, 'litellm': 'litellm' in sys.modules}}))")


class HookError(click.ClickException):
    pass


def resolve_python(python: str | None) -> str:
    """An interpreter path; a virtualenv directory means its ``bin/python``."""
    if not python:
        return sys.executable
    path = Path(os.path.expanduser(python))
    if path.is_dir():
        for candidate in (path / "bin" / "python", path / "Scripts" / "python.exe"):
            if candidate.exists():
                return str(candidate)
        raise HookError(f"{path} is a directory without bin/python")
    return str(path)


def probe(python: str) -> dict[str, object]:
    """Ask the target interpreter where its site-packages is and whether the hook loaded."""
    env = {**os.environ}
    env.pop("PYTHONPATH", None)  # the target's own view, not ours
    try:
        out = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=60, env=env,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise HookError(f"cannot run {python}: {err}") from None
    return json.loads(out.strip().splitlines()[-1])


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def hook_files(site: Path) -> list[Path]:
    return [site / PTH_NAME, site / f"{HOOK_MODULE}.py", site / f"{CALLBACK_MODULE}.py",
            *(site / f"{name}.py" for name in CALLBACK_DEPS.values())]


def standalone_callback() -> dict[str, str]:
    """File name → source of a callback that imports nothing from this package."""
    files = {}
    source = (_PACKAGE / "callback.py").read_text(encoding="utf-8")
    for module, name in CALLBACK_DEPS.items():
        files[f"{name}.py"] = HEADER + (_PACKAGE / f"{module}.py").read_text(encoding="utf-8")
        source = source.replace(f"from llm_log_exporter.{module} import", f"from {name} import")
    if "llm_log_exporter." in source.replace("llm_log_exporter.callback", ""):
        raise HookError("callback.py imports a package module that install-hook does not copy")
    files[f"{CALLBACK_MODULE}.py"] = HEADER + source
    return files


def install(python: str | None = None) -> tuple[Path, dict[str, object]]:
    """Write the hook into the target's site-packages; returns (site-packages, post-install probe)."""
    python = resolve_python(python)
    site = Path(str(probe(python)["purelib"]))
    try:
        site.mkdir(parents=True, exist_ok=True)
        hook_source = (_PACKAGE / "litellm_hook.py").read_text(encoding="utf-8")
        hook_source = hook_source.replace('CALLBACK_MODULE = "llm_log_exporter_hook_callback"',
                                          f'CALLBACK_MODULE = "{CALLBACK_MODULE}"')
        for name, text in standalone_callback().items():
            _write(site / name, text)
        _write(site / f"{HOOK_MODULE}.py", HEADER + hook_source)
        _write(site / PTH_NAME, HEADER + PTH_LINE)  # last: nothing runs until the modules are in place
    except OSError as err:
        raise HookError(f"cannot write into {site}: {err.strerror or err}") from None
    return site, probe(python)


def uninstall(python: str | None = None) -> tuple[Path, list[Path]]:
    """Remove the hook files (the ``.pth`` first) and their bytecode; returns what was removed."""
    python = resolve_python(python)
    site = Path(str(probe(python)["purelib"]))
    removed = []
    targets = hook_files(site)
    cache = site / "__pycache__"
    if cache.is_dir():
        for module in (HOOK_MODULE, CALLBACK_MODULE, *CALLBACK_DEPS.values()):
            targets += sorted(cache.glob(f"{module}.*.pyc"))
    for path in targets:
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise HookError(f"cannot remove {path}: {err.strerror or err}") from None
    return site, removed


_PYTHON_HELP = ("Interpreter (or virtualenv directory) of the target environment, e.g. "
                "~/.local/share/pipx/venvs/aider-chat [default: this Python].")


@click.command("install-hook")
@click.option("--python", "python", metavar="PATH", help=_PYTHON_HELP)
def install_hook_command(python: str | None) -> None:
    """Make every LiteLLM program in an environment (e.g. aider's) log its calls, unmodified.

    \b
    Writes a .pth file and a small hook module into the target's site-packages. The hook waits
    until the program imports litellm, then appends our callback to litellm.callbacks. Calls are
    written to $LLM_USAGE_LOG (default ~/.aider/usage.jsonl); LLM_USAGE_LOG=off disables it.
    """
    site, state = install(python)
    if not state["hook"]:
        raise HookError(f"wrote the hook into {site}, but that interpreter did not load it "
                        "(is it a site-packages directory?)")
    if state["litellm"]:
        click.echo("warning: litellm was imported at start-up by something else in that environment", err=True)
    target = os.environ.get("LLM_USAGE_LOG") or "~/.aider/usage.jsonl"
    click.echo(f"installed the LiteLLM hook into {site}")
    click.echo(f"LiteLLM calls will be appended to {target} ($LLM_USAGE_LOG; 'off' disables)")
    click.echo(f"follow them with: llm-log-exporter --file {target}")


@click.command("uninstall-hook")
@click.option("--python", "python", metavar="PATH", help=_PYTHON_HELP)
def uninstall_hook_command(python: str | None) -> None:
    """Remove what install-hook wrote."""
    site, removed = uninstall(python)
    if removed:
        click.echo(f"removed the LiteLLM hook from {site} ({len(removed)} files)")
    else:
        click.echo(f"no LiteLLM hook installed in {site}")
