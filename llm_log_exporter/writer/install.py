"""``install-hook`` / ``uninstall-hook``: log LiteLLM calls of an unmodified program (e.g. aider).

The target environment (aider's pipx venv) does not have this package, so a self-contained package
``llm_log_exporter_hook`` is written into its site-packages: ``site_hook.py`` as its ``__init__``, and
copies of the writer modules and of ``schema`` (standard library only, relative imports only), plus the
``.pth`` that Python's ``site`` runs at start-up. The ``.pth`` line swallows every error, so a damaged
install can never stop the interpreter. This module runs in the exporter's environment, not the target's.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from llm_log_exporter import __version__
from llm_log_exporter.files import write_atomic

HOOK_PACKAGE = "llm_log_exporter_hook"
PTH_NAME = f"{HOOK_PACKAGE}.pth"
# What the hook runs in the target: the writer minus this installer, and the wire format it imports.
COPIED = {
    "writer": ("__init__.py", "callback.py", "calls.py", "encode.py", "logfile.py", "rotation.py", "safe_open.py",
               "stream_usage.py"),
    "schema": ("__init__.py", "errors.py", "litellm.py"),
}
# Single-file modules of earlier versions (before the hook became a package): removed on (un)install.
LEGACY_MODULES = ("llm_log_exporter_hook", "llm_log_exporter_hook_callback", "llm_log_exporter_hook_safe_open")
# A .pth line starting with "import" is executed; the try keeps a broken or half-removed hook silent.
PTH_LINE = f'import sys; exec("try:\\n import {HOOK_PACKAGE}\\nexcept Exception:\\n pass")\n'
HEADER = f"# Written by llm-log-exporter {__version__} install-hook; remove with `llm-log-exporter uninstall-hook`.\n"

_PACKAGE = Path(__file__).resolve().parent.parent

_PROBE = ("import json, sys, sysconfig; print(json.dumps({'purelib': sysconfig.get_paths()['purelib'], "
          f"'hook': {HOOK_PACKAGE!r} in sys.modules, 'litellm': 'litellm' in sys.modules}}))")


class HookError(Exception):
    """The hook cannot be installed or removed; the message says why."""


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


def _imports_the_package(source: str) -> bool:
    """Whether a module imports ``llm_log_exporter`` by its absolute name (the hook copy is renamed)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        if any(name.split(".")[0] == "llm_log_exporter" for name in names):
            return True
    return False


DEFAULT_LABELS_LINE = 'DEFAULT_LABELS = "repo"'


def hook_sources(labels: str = "repo") -> dict[str, str]:
    """Relative path inside the hook package → source, for every file the hook package holds.

    ``labels``: the hook's default ``LLM_USAGE_LABELS`` (``off`` for none), written into its ``__init__``.
    """
    hook = (_PACKAGE / "writer" / "site_hook.py").read_text(encoding="utf-8")
    if DEFAULT_LABELS_LINE not in hook:  # pragma: no cover - a test holds site_hook.py to it
        raise HookError("site_hook.py lost its DEFAULT_LABELS line")
    hook = hook.replace(DEFAULT_LABELS_LINE, f"DEFAULT_LABELS = {labels!r}", 1)
    files = {"__init__.py": HEADER + hook}
    for package, names in COPIED.items():
        for name in names:
            source = (_PACKAGE / package / name).read_text(encoding="utf-8")
            if _imports_the_package(source):
                raise HookError(f"{package}/{name} imports the package by its absolute name; the hook copy would "
                                "not find it (use relative imports within writer/ and schema/)")
            files[f"{package}/{name}"] = HEADER + source
    return files


def _remove_legacy(site: Path) -> list[Path]:
    removed = []
    cache = site / "__pycache__"
    for module in LEGACY_MODULES:
        candidates = [site / f"{module}.py", *(sorted(cache.glob(f"{module}.*.pyc")) if cache.is_dir() else [])]
        for path in candidates:
            try:
                path.unlink()
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed


def install(python: str | None = None, labels: str = "repo") -> tuple[Path, dict[str, object]]:
    """Write the hook into the target's site-packages; returns (site-packages, post-install probe).

    ``labels``: what the hook records as attribution labels unless ``$LLM_USAGE_LABELS`` is set
    (``repo``: the git top-level directory's name; metadata keys; ``off`` for none)."""
    python = resolve_python(python)
    site = Path(str(probe(python)["purelib"]))
    package = site / HOOK_PACKAGE
    staging = site / f".{HOOK_PACKAGE}.tmp{os.getpid()}"
    try:
        site.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        for relative, text in hook_sources(labels).items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        _remove_legacy(site)
        shutil.rmtree(package, ignore_errors=True)
        os.replace(staging, package)
        write_atomic(str(site / PTH_NAME), (HEADER + PTH_LINE).encode())  # last: nothing runs until now
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise HookError(f"cannot write into {site}: {err.strerror or err}") from None
    return site, probe(python)


def uninstall(python: str | None = None) -> tuple[Path, list[Path]]:
    """Remove the ``.pth`` first, then the hook package and any earlier version's modules."""
    python = resolve_python(python)
    site = Path(str(probe(python)["purelib"]))
    removed = []
    try:
        pth = site / PTH_NAME
        if pth.exists():
            pth.unlink()
            removed.append(pth)
        package = site / HOOK_PACKAGE
        if package.is_dir():
            removed.extend(sorted(p for p in package.rglob("*") if p.is_file()))
            shutil.rmtree(package)
        removed.extend(_remove_legacy(site))
    except OSError as err:
        raise HookError(f"cannot remove the hook from {site}: {err.strerror or err}") from None
    return site, removed
