"""The writer: the standard-library-only code that runs inside the user's LLM process.

``callback`` (the LiteLLM callback) appends one schema-v1 line per call through ``logfile`` and
``safe_open``; ``site_hook`` puts it into an unmodified program (aider) and ``install`` copies these
modules, with ``llm_log_exporter.schema``, into that program's environment. Nothing here imports the
rest of the package, so the copy works without it.
"""
