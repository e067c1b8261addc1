"""Turn LLM usage logs into Prometheus metrics."""

__version__ = "0.1.0"
