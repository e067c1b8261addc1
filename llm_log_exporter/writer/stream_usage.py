"""Streamed LiteLLM calls ask the provider for its token usage (``stream_options={"include_usage": True}``).

OpenAI-compatible servers send a stream's usage only when asked, and litellm 1.81.10 asks by itself only
for api.openai.com (``llms/openai/openai.py`` ``get_stream_options``). A stream that did not ask is logged
with litellm's tokenizer *estimate* (674 prompt tokens logged where the server counted 120, seen with
aider). litellm has no hook in 1.81.10 that lets a logger change an SDK call's parameters
(``async_pre_request_hook`` serves Anthropic's pass-through only; ``async_pre_call_hook`` the proxy only), so
this wraps ``litellm.completion`` and ``litellm.acompletion``: a ``stream=True`` call that sets no
``stream_options`` gets ``include_usage`` when litellm lists ``stream_options`` among the provider's
parameters (OpenAI, Azure, vLLM, DeepSeek, …; Anthropic, Gemini and Bedrock send usage unasked and do not
take it). The caller then also receives the final usage chunk (``choices: []``), as OpenAI documents it.

``install-hook`` turns this on for the program it hooks (aider); SDK users call
``request_stream_usage(litellm)`` themselves. ``LLM_USAGE_INCLUDE_USAGE=off`` leaves the calls alone.
Standard library only; a failure here leaves the call as the caller made it.
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any

ENV_VAR = "LLM_USAGE_INCLUDE_USAGE"
MARK = "_llm_log_exporter_stream_usage"


def _ask_for_usage(litellm: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if kwargs.get("stream") is not True or kwargs.get("stream_options") is not None:
        return
    try:
        model = kwargs.get("model", args[0] if args else None)
        if not isinstance(model, str):
            return
        _, provider, _, _ = litellm.get_llm_provider(model=model, custom_llm_provider=kwargs.get("custom_llm_provider"),
                                                     api_base=kwargs.get("api_base") or kwargs.get("base_url"))
        params = litellm.get_supported_openai_params(model=model, custom_llm_provider=provider) or ()
        if "stream_options" in params:
            kwargs["stream_options"] = {"include_usage": True}
    except Exception:
        return


def _wrap(litellm: Any, original: Any) -> Any:
    if getattr(original, MARK, False):
        return original
    if inspect.iscoroutinefunction(original):
        @functools.wraps(original)
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            _ask_for_usage(litellm, args, kwargs)
            return await original(*args, **kwargs)

        wrapper: Any = call_async
    else:
        @functools.wraps(original)
        def call(*args: Any, **kwargs: Any) -> Any:
            _ask_for_usage(litellm, args, kwargs)
            return original(*args, **kwargs)

        wrapper = call
    setattr(wrapper, MARK, True)
    return wrapper


def request_stream_usage(litellm: Any) -> bool:
    """Make ``litellm.completion`` / ``litellm.acompletion`` streams ask for usage; True when they do."""
    if os.environ.get(ENV_VAR, "").strip().lower() == "off":
        return False
    try:
        for name in ("completion", "acompletion"):
            original = getattr(litellm, name, None)
            if callable(original):
                setattr(litellm, name, _wrap(litellm, original))
        return True
    except Exception:
        return False
