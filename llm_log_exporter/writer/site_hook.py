"""Lazy LiteLLM hook: the source that ``llm-log-exporter install-hook`` writes into another environment.

Installed as the ``__init__`` of a package ``llm_log_exporter_hook`` (beside copies of ``writer`` and
``schema``) with ``llm_log_exporter_hook.pth`` in the target's site-packages, so any program there —
aider in its pipx venv, unmodified — logs every LiteLLM call. At interpreter start-up the ``.pth`` imports
this module, which only puts a finder on ``sys.meta_path``: litellm is not imported early (aider
defers that import on purpose; it takes seconds). When the program itself imports ``litellm``, the
finder wraps that one module's ``exec_module`` and, right after litellm has loaded, appends a
``UsageLogger`` to ``litellm.callbacks``, writing to ``$LLM_USAGE_LOG`` (default
``~/.aider/usage.jsonl``; ``off`` disables the hook), and makes streamed calls ask the provider for their
token usage where it can (``writer/stream_usage.py``; ``LLM_USAGE_INCLUDE_USAGE=off`` disables that alone).
Each line carries the ``repo`` attribution label (the name of the git top-level directory aider works in)
unless ``$LLM_USAGE_LABELS`` says otherwise (``off``, or another comma-separated list; ``install-hook
--labels`` sets the default). Standard library only; every failure inside the hook is swallowed, so a
broken hook never breaks the host program.

This file is not imported by the exporter itself.
"""

import os
import sys

CALLBACK_MODULE = ".writer.callback"  # relative to the installed package
PATH_ENV_VAR = "LLM_USAGE_LOG"
LABELS_ENV_VAR = "LLM_USAGE_LABELS"
DEFAULT_LABELS = "repo"  # install-hook --labels rewrites this line in the installed copy
TARGET = "litellm"


def disabled() -> bool:
    return os.environ.get(PATH_ENV_VAR, "").strip().lower() == "off"


def register(litellm) -> bool:  # type: ignore[no-untyped-def]
    """Append our logger to ``litellm.callbacks`` once; True when it is (or already was) there."""
    try:
        if disabled():
            return False
        import importlib

        callback = importlib.import_module(CALLBACK_MODULE, __name__)
        callbacks = getattr(litellm, "callbacks", None)
        if not isinstance(callbacks, list):
            return False
        callback.request_stream_usage(litellm)  # streams carry the provider's token counts, not estimates
        labels = os.environ.get(LABELS_ENV_VAR, DEFAULT_LABELS)
        usage_logger = callback.UsageLogger(labels=labels)  # created after litellm loaded: a real CustomLogger
        for existing in callbacks:
            if type(existing).__name__ == "UsageLogger" and getattr(existing, "path", None) == usage_logger.path:
                return True
        callbacks.append(usage_logger)
        return True
    except Exception:
        return False


class LitellmFinder:
    """One-shot meta-path finder: finds ``litellm`` through the other finders and hooks its loading."""

    def find_spec(self, fullname, path=None, target=None):  # type: ignore[no-untyped-def]
        if fullname != TARGET:
            return None
        try:
            spec = None
            for finder in list(sys.meta_path):
                find = getattr(finder, "find_spec", None)
                if finder is self or find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
            if spec is None or spec.loader is None:
                return None
            original = spec.loader.exec_module

            def exec_module(module):  # type: ignore[no-untyped-def]
                original(module)  # litellm's own errors propagate as if we were not here
                register(module)

            spec.loader.exec_module = exec_module  # this loader instance serves this one module
            self.remove()
            return spec
        except Exception:
            return None

    def remove(self) -> None:
        try:  # noqa: SIM105 - no contextlib import on every interpreter start-up
            sys.meta_path.remove(self)
        except ValueError:
            pass


def install() -> None:
    try:
        if disabled():
            return
        if TARGET in sys.modules:
            register(sys.modules[TARGET])
            return
        if not any(isinstance(finder, LitellmFinder) for finder in sys.meta_path):
            sys.meta_path.insert(0, LitellmFinder())
    except Exception:
        pass


install()
