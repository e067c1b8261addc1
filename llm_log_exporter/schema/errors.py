"""Error taxonomy: an exception class name and/or an error code → one of ``ERROR_TYPES``.

Shared by the writer (exceptions LiteLLM hands its failure hooks) and the parsers (error classes and codes
in LiteLLM payloads, batch files and aider's log), so a failure is classed the same whichever way it came.
"""

from __future__ import annotations


def _norm_name(name: str) -> str:
    """``openai.RateLimitError`` / ``rate_limit_error`` / ``RateLimitError`` -> ``ratelimiterror``."""
    name = name.rsplit(".", 1)[-1]
    return "".join(ch for ch in name.lower() if ch.isalnum())


# Exception class names (litellm, openai, anthropic, httpx, builtins) and the string error codes
# providers put in their bodies (OpenAI ``code``, Anthropic ``error.type``), normalized.
_BY_NAME: dict[str, str] = {
    # rate limit
    "ratelimiterror": "rate_limit",
    "ratelimitexceeded": "rate_limit",
    "insufficientquota": "rate_limit",
    "throttlingexception": "rate_limit",
    "toomanyrequests": "rate_limit",
    # timeout
    "timeout": "timeout",
    "timeouterror": "timeout",
    "apitimeouterror": "timeout",
    "timeoutexception": "timeout",
    "readtimeout": "timeout",
    "connecttimeout": "timeout",
    "writetimeout": "timeout",
    "pooltimeout": "timeout",
    # auth
    "authenticationerror": "auth",
    "permissiondeniederror": "auth",
    "permissionerror": "auth",  # Anthropic "permission_error" (403), not the OSError subclass
    "invalidapikey": "auth",
    "autherror": "auth",  # LiteLLM proxy ProxyException.type "auth_error"
    "nodbconnection": "auth",  # proxy without a database rejecting a key it cannot check ("no_db_connection")
    # bad request
    "badrequesterror": "bad_request",
    "unprocessableentityerror": "bad_request",
    "invalidrequesterror": "bad_request",
    "unsupportedparamserror": "bad_request",
    "rejectedrequesterror": "bad_request",
    "imagefetcherror": "bad_request",
    "litellmunknownprovider": "bad_request",
    "requesttoolarge": "bad_request",
    # context window
    "contextwindowexceedederror": "context_window",
    "contextlengthexceeded": "context_window",
    # content filter (provider policy or a guardrail blocked the call)
    "contentpolicyviolationerror": "content_filter",
    "contentpolicyviolation": "content_filter",
    "contentfilter": "content_filter",
    "guardrailraisedexception": "content_filter",
    "guardrailinterventionnormalstringerror": "content_filter",
    "blockedpiientityerror": "content_filter",
    # not found
    "notfounderror": "not_found",
    "modelnotfound": "not_found",
    "proxymodelnotfounderror": "not_found",  # the proxy has no model of the requested name
    # server side
    "internalservererror": "server_error",
    "serviceunavailableerror": "server_error",
    "badgatewayerror": "server_error",
    "midstreamfallbackerror": "server_error",
    "apierror": "server_error",
    "overloadederror": "server_error",
    "servererror": "server_error",
    # connection
    "apiconnectionerror": "connection",
    "connecterror": "connection",
    "connectionerror": "connection",
    "connectionreseterror": "connection",
    "connectionrefusederror": "connection",
    # budget
    "budgetexceedederror": "budget_exceeded",
    "budgetexceeded": "budget_exceeded",
}

# Catch-all classes whose HTTP code says more than their name (litellm raises ``APIError`` with
# arbitrary status codes). For these the code wins when it maps to something specific.
_GENERIC_NAMES = frozenset(
    {"apierror", "apistatuserror", "mockexception", "openaierror", "exception", "httpstatuserror"}
)


def _classify_status(code: int) -> str:
    if code == 429:
        return "rate_limit"
    if code in (408, 504):
        return "timeout"
    if code in (401, 403):
        return "auth"
    if code in (400, 413, 422):
        return "bad_request"
    if code == 404:
        return "not_found"
    if code == 402:
        return "budget_exceeded"
    if 500 <= code <= 599:
        return "server_error"
    return "other"


def _classify_code(error_code: object) -> str:
    if error_code is None or isinstance(error_code, bool):
        return "other"
    if isinstance(error_code, int):
        return _classify_status(error_code)
    if isinstance(error_code, str):
        text = error_code.strip()
        if text.isdigit():
            return _classify_status(int(text))
        if text:
            return _BY_NAME.get(_norm_name(text), "other")
    return "other"


def classify_error(error_class: str | None, error_code: str | int | None) -> str:
    """Map an exception class name and/or an error code to one of ``ERROR_TYPES``.

    The class name wins (litellm's ``APIConnectionError`` carries status 500), except for
    catch-all classes such as ``APIError`` where a specific HTTP code is more telling. The code
    may be an HTTP status (``429``, ``"429"``) or a provider string (``"context_length_exceeded"``).
    Never raises; unknown input gives ``"other"``.
    """
    try:
        by_class = None
        if isinstance(error_class, str) and error_class:
            name = _norm_name(error_class)
            by_class = _BY_NAME.get(name)
            if by_class is not None and name not in _GENERIC_NAMES:
                return by_class
        by_code = _classify_code(error_code)
        if by_code != "other":
            return by_code
        return by_class or "other"
    except Exception:  # pragma: no cover - defensive: a classifier must not fail
        return "other"


def classify_exception(exc: object) -> str:
    """An exception object → one of ``ERROR_TYPES``: its class name and HTTP status, and for the LiteLLM
    proxy's own ``ProxyException`` (which says 400 for a key it cannot check) its ``type``."""
    try:
        name = type(exc).__name__
        if name == "ProxyException":
            kind = getattr(exc, "type", None)
            if isinstance(kind, str):
                by_kind = _BY_NAME.get(_norm_name(kind))
                if by_kind is not None:
                    return by_kind
        code = getattr(exc, "status_code", None)
        if code is None:
            code = getattr(exc, "code", None)
        return classify_error(name, code if isinstance(code, (int, str)) else None)
    except Exception:  # pragma: no cover - defensive
        return "other"
