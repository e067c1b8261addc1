"""``llm-log-exporter healthcheck``: probe our own /healthz, for container HEALTHCHECKs.

Slim images carry no curl or wget; this uses the interpreter that is there anyway, and it reads
the port from the same flags, environment and config file as the daemon, so a port changed
through ``LLM_LOG_EXPORTER_PORT`` or ``--config`` is probed where the daemon listens.
"""

from __future__ import annotations

import urllib.error
import urllib.request


def probe_url(host: str, port: int, path: str = "/healthz") -> str:
    """The URL to probe: a wildcard listen address is reached through loopback."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def check(url: str, timeout: float) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200, f"{url}: {response.status}"
    except urllib.error.HTTPError as err:
        return False, f"{url}: {err.code}"
    except OSError as err:
        return False, f"{url}: {getattr(err, 'reason', None) or err}"
