"""A LiteLLM custom logger that appends each ``standard_logging_object`` it is handed as one JSON line, the way
LiteLLM's own bucket loggers (s3_v2, gcs_bucket) write it (``json.dumps(payload, default=str)``). Like them it
implements only the async hooks. The real-proxy test loads it beside the project's callback, so the same calls
can be read back with ``--format litellm`` and held against the same ledger.

The path comes from ``$LITELLM_PAYLOAD_LOG``. The payload is written whole, prompts and replies included, as
those loggers write it: the exporter must read it without keeping any of that text.
"""

from __future__ import annotations

import json
import os
from typing import Any

from litellm.integrations.custom_logger import CustomLogger


class PayloadDump(CustomLogger):
    def _dump(self, kwargs: Any) -> None:
        payload = kwargs.get("standard_logging_object")
        if not isinstance(payload, dict):
            return
        line = json.dumps(payload, default=str) + "\n"
        fd = os.open(os.environ["LITELLM_PAYLOAD_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._dump(kwargs)

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._dump(kwargs)


payload_dump = PayloadDump()
