"""Loaded by the LiteLLM proxy (litellm_settings.callbacks): one JSON line per call, no prompt text.

The file path comes from $LLM_USAGE_LOG. The tenant is the caller's metadata tenant_id, a
``tenant:<id>`` tag, or else the proxy team of the virtual key.
"""

from llm_log_exporter.callback import UsageLogger

proxy_handler_instance = UsageLogger()
