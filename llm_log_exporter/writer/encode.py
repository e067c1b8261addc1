"""One event → one compact JSON line: orjson when importable (about 5x faster), else the standard library.

Both give compact output with keys in insertion order; floats may be spelled differently
(1.35e-5 vs 1.35e-05), which every JSON reader takes alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

_json_dumps: Callable[[Any], str] = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
).encode


def _encode_stdlib(event: Mapping[str, Any]) -> bytes:
    return (_json_dumps(event) + "\n").encode("utf-8")


try:
    import orjson as _orjson

    _ORJSON_OPTS = getattr(_orjson, "OPT_APPEND_NEWLINE", 0)

    def _encode_orjson(event: Mapping[str, Any]) -> bytes:
        data = _orjson.dumps(event, option=_ORJSON_OPTS)
        return data if _ORJSON_OPTS else data + b"\n"

    encode_event: Callable[[Mapping[str, Any]], bytes] = _encode_orjson
except Exception:  # ImportError, or a broken wheel: never let it break the user's process
    encode_event = _encode_stdlib

encode_event.__doc__ = "Encode an event as one compact JSON line ending in a newline (UTF-8 bytes)."
