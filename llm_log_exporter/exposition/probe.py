"""``llm-log-exporter healthcheck``: probe our own /healthz, for container HEALTHCHECKs.

Slim images carry no curl or wget; this uses the interpreter that is there anyway, and it reads
the port from the same flags, environment and config file as the daemon, so a port changed
through ``LLM_LOG_EXPORTER_PORT`` or ``--config`` is probed where the daemon listens.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request


def probe_url(host: str, port: int, path: str = "/healthz", scheme: str = "http") -> str:
    """The URL to probe: a wildcard listen address is reached through loopback."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}".replace("http", scheme, 1)


def check(url: str, timeout: float, auth_required: bool = False) -> tuple[bool, str]:
    """With --web.config.file the probe speaks TLS without verifying (it dials its own port and only
    asks whether the server answers) and, holding no password, takes a 401 for "alive"."""
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return response.status == 200, f"{url}: {response.status}"
    except urllib.error.HTTPError as err:
        return err.code == 401 and auth_required, f"{url}: {err.code}"
    except (urllib.error.URLError, ssl.SSLError) as err:
        return False, f"{url}: {getattr(err, 'reason', None) or err}"
    except OSError as err:
        return False, f"{url}: {getattr(err, 'reason', None) or err}"


def check_handshake(host: str, port: int, timeout: float) -> tuple[bool, str]:
    """For servers that require client certificates, which the probe does not hold: a completed TLS
    handshake, or a TLS alert from the server, shows it is alive."""
    import socket

    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    where = f"tls://{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock, \
                context.wrap_socket(sock, server_hostname=host):
            return True, f"{where}: TLS handshake completed (client certificate required for requests)"
    except ssl.SSLError as err:
        if "ALERT" in str(err).upper():
            return True, f"{where}: answered with a TLS alert (client certificate required)"
        return False, f"{where}: {err}"
    except OSError as err:
        return False, f"{where}: {err}"
