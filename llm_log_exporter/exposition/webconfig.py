"""``--web.config.file``: TLS, client certificates and basic auth in the exporter-toolkit format.

Operators reuse the file they already wrote for node_exporter (``tls_server_config``,
``http_server_config``, ``basic_auth_users`` with bcrypt hashes). Like the toolkit, unknown keys are
errors, so a typo never silently turns security off. PyYAML and bcrypt are optional (``[web]``
extra) and imported only here. The file and every file it names are re-checked (one ``stat`` each)
at most once a second when a connection arrives, and reloaded on change or SIGHUP; a config that
fails to load is logged and the previous one stays in force.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import ssl
import threading
import time
from base64 import b64decode
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("llm_log_exporter")

INSTALL_HINT = "pip install pyyaml bcrypt (from a checkout of llm-log-exporter: pip install '.[web]')"  # not on PyPI

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# Go's names for the TLS 1.2 suites it offers → OpenSSL's (IANA registry facts). TLS 1.3 suites are
# not configurable, in Go as in OpenSSL's cipher list.
_CIPHERS = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
}
_CURVES = {"CurveP256", "CurveP384", "CurveP521", "X25519"}
# The response headers the toolkit lets operators set.
_HEADERS = {
    "strict-transport-security": "Strict-Transport-Security",
    "x-content-type-options": "X-Content-Type-Options",
    "x-frame-options": "X-Frame-Options",
    "x-xss-protection": "X-XSS-Protection",
    "content-security-policy": "Content-Security-Policy",
}
_TLS_KEYS = {
    "cert_file", "key_file", "cert", "key", "client_auth_type", "client_ca_file", "client_allowed_sans",
    "cipher_suites", "curve_preferences", "min_version", "max_version", "prefer_server_cipher_suites",
}
_BCRYPT_HASH = re.compile(r"^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$")
_CACHE_SIZE = 256
RECHECK_SECONDS = 1.0


class WebConfigError(ValueError):
    """The web config cannot be used; the message is one line for the operator."""


class Authenticator:
    """HTTP basic auth against bcrypt hashes.

    bcrypt costs ~0.1 s of CPU by design; Prometheus sends the same credentials every scrape, so
    verdicts are cached under an HMAC of user and password with a per-process key (the password
    itself is never kept). Unknown users still cost one bcrypt check, so timing does not reveal
    which user names exist.
    """

    def __init__(self, users: Mapping[str, str]) -> None:
        import bcrypt

        self._bcrypt = bcrypt
        self.users = {name: digest.encode() for name, digest in users.items()}
        self._dummy = bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(_cost(users)))
        self._key = os.urandom(32)
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, header: str | None) -> bool:
        if not header or header[:6].lower() != "basic ":
            return False
        try:
            user, sep, password = b64decode(header[6:].strip(), validate=True).partition(b":")
        except ValueError:
            return False
        if not sep:
            return False
        key = hmac.new(self._key, user + b"\0" + password, hashlib.sha256).digest()
        with self._lock:
            verdict = self._cache.get(key)
            if verdict is not None:
                self._cache.move_to_end(key)
                return verdict
        digest = self.users.get(user.decode("utf-8", "replace"))
        try:
            verdict = self._bcrypt.checkpw(password, digest or self._dummy) and digest is not None
        except ValueError:  # a malformed hash: deny
            verdict = False
        with self._lock:
            self._cache[key] = verdict
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return verdict


def _cost(users: Mapping[str, str]) -> int:
    for digest in users.values():
        try:
            return max(4, min(31, int(digest.split("$")[2])))
        except (IndexError, ValueError):
            continue
    return 10


@dataclass
class WebConfig:
    """One loaded config: what a connection needs, built once per (re)load."""

    ssl_context: ssl.SSLContext | None = None
    auth: Authenticator | None = None
    headers: dict[str, str] = field(default_factory=dict)
    allowed_sans: frozenset[str] = frozenset()
    files: tuple[str, ...] = ()

    @property
    def tls(self) -> bool:
        return self.ssl_context is not None


def _mapping(value: Any, where: str, allowed: set[str] | None = None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WebConfigError(f"{where} must be a mapping")
    if allowed is not None:
        unknown = sorted(set(map(str, value)) - allowed)
        if unknown:
            raise WebConfigError(f"{where}: unknown key {unknown[0]!r}")
    return value


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise WebConfigError(f"{where} must be a list of strings")
    return value


def _resolve(base: str, name: Any, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise WebConfigError(f"{where} must be a file name")
    path = os.path.join(os.path.dirname(os.path.abspath(base)), os.path.expanduser(name))
    if not os.path.isfile(path):
        raise WebConfigError(f"{where}: {path} is not a readable file")
    return path


def _tls_versions(ctx: ssl.SSLContext, tls: dict[str, Any]) -> None:
    versions = (("min_version", "TLS12", "minimum_version"), ("max_version", "TLS13", "maximum_version"))
    for name, default, attr in versions:
        version = tls.get(name) or default
        if version not in _TLS_VERSIONS:
            raise WebConfigError(f"tls_server_config.{name}: {version!r} is not one of {', '.join(_TLS_VERSIONS)}")
        try:
            setattr(ctx, attr, _TLS_VERSIONS[version])
        except (ValueError, ssl.SSLError) as err:
            raise WebConfigError(f"tls_server_config.{name}: {version} not available here: {err}") from None
    if ctx.minimum_version > ctx.maximum_version:
        raise WebConfigError("tls_server_config: min_version is above max_version")


def _client_auth(ctx: ssl.SSLContext, path: str, tls: dict[str, Any], files: list[str]) -> None:
    auth_type = tls.get("client_auth_type") or "NoClientCert"
    if auth_type in ("RequestClientCert", "RequireAnyClientCert"):
        raise WebConfigError(
            f"tls_server_config.client_auth_type: {auth_type} (an unverified certificate) is not supported; "
            "use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
        )
    if auth_type not in _CLIENT_AUTH:
        raise WebConfigError(f"tls_server_config.client_auth_type: unknown value {auth_type!r}")
    ctx.verify_mode = _CLIENT_AUTH[auth_type]
    if tls.get("client_ca_file"):
        if auth_type == "NoClientCert":
            raise WebConfigError("tls_server_config: client_ca_file is set but client_auth_type is NoClientCert")
        ca = _resolve(path, tls["client_ca_file"], "tls_server_config.client_ca_file")
        files.append(ca)
        try:
            ctx.load_verify_locations(cafile=ca)
        except (ssl.SSLError, OSError) as err:
            raise WebConfigError(f"tls_server_config.client_ca_file: cannot load {ca}: {err}") from None
    elif auth_type != "NoClientCert":
        raise WebConfigError(f"tls_server_config: client_auth_type {auth_type} needs client_ca_file")


def _ciphers(ctx: ssl.SSLContext, tls: dict[str, Any]) -> None:
    suites = _strings(tls.get("cipher_suites"), "tls_server_config.cipher_suites")
    if suites:
        unknown = [s for s in suites if s not in _CIPHERS]
        if unknown:
            raise WebConfigError(f"tls_server_config.cipher_suites: unknown suite {unknown[0]!r}")
        try:
            ctx.set_ciphers(":".join(dict.fromkeys(_CIPHERS[s] for s in suites)))
        except ssl.SSLError as err:
            raise WebConfigError(f"tls_server_config.cipher_suites: {err}") from None
    curves = _strings(tls.get("curve_preferences"), "tls_server_config.curve_preferences")
    if any(c not in _CURVES for c in curves):
        raise WebConfigError(f"tls_server_config.curve_preferences: use {', '.join(sorted(_CURVES))}")
    if curves:
        log.info("web config: curve_preferences accepted but OpenSSL's default curve order is used")
    if tls.get("prefer_server_cipher_suites"):
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE


def _ssl_context(path: str, tls: dict[str, Any], files: list[str]) -> ssl.SSLContext:
    """An ``SSLContext`` from ``tls_server_config`` (toolkit defaults: TLS 1.2 minimum, no client cert)."""
    if tls.get("cert") or tls.get("key"):
        raise WebConfigError("tls_server_config: inline cert/key are not supported; use cert_file and key_file")
    if not tls.get("cert_file") or not tls.get("key_file"):
        raise WebConfigError("tls_server_config: cert_file and key_file are both required")
    cert = _resolve(path, tls["cert_file"], "tls_server_config.cert_file")
    key = _resolve(path, tls["key_file"], "tls_server_config.key_file")
    files += [cert, key]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as err:
        raise WebConfigError(f"tls_server_config: cannot load {cert} / {key}: {err}") from None
    _tls_versions(ctx, tls)
    _client_auth(ctx, path, tls, files)
    _ciphers(ctx, tls)
    ctx.options |= ssl.OP_NO_COMPRESSION
    return ctx


def load(path: str) -> WebConfig:
    """Parse and check ``path``; raises ``WebConfigError`` with a one-line message."""
    try:
        import yaml
    except ImportError:
        raise WebConfigError(f"--web.config.file needs PyYAML and bcrypt: {INSTALL_HINT}") from None
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as err:
        raise WebConfigError(f"{path}: {err.strerror or err}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise WebConfigError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    top = _mapping(data, path, {"tls_server_config", "http_server_config", "basic_auth_users"})
    files = [os.path.abspath(path)]
    config = WebConfig()
    tls = _mapping(top.get("tls_server_config"), "tls_server_config", _TLS_KEYS)
    if tls:
        config.ssl_context = _ssl_context(path, tls, files)
        config.allowed_sans = frozenset(_strings(tls.get("client_allowed_sans"), "client_allowed_sans"))
        if config.allowed_sans and config.ssl_context.verify_mode != ssl.CERT_REQUIRED:
            raise WebConfigError("client_allowed_sans needs client_auth_type RequireAndVerifyClientCert")
    http = _mapping(top.get("http_server_config"), "http_server_config", {"http2", "headers"})
    for name, value in _mapping(http.get("headers"), "http_server_config.headers").items():
        canonical = _HEADERS.get(str(name).lower())
        if canonical is None:
            raise WebConfigError(f"http_server_config.headers: {name!r} cannot be configured")
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            raise WebConfigError(f"http_server_config.headers.{name}: must be a one-line string")
        config.headers[canonical] = value
    users = _mapping(top.get("basic_auth_users"), "basic_auth_users")
    for name, digest in users.items():
        if not isinstance(name, str) or not name or ":" in name:
            raise WebConfigError(f"basic_auth_users: {name!r} is not a valid user name")
        if not isinstance(digest, str) or not _BCRYPT_HASH.match(digest):
            raise WebConfigError(f"basic_auth_users.{name}: not a bcrypt hash (htpasswd -nBC 10 '' | tr -d ':')")
    if users:
        try:
            config.auth = Authenticator(users)
        except ImportError:
            raise WebConfigError(f"basic_auth_users needs bcrypt: {INSTALL_HINT}") from None
    config.files = tuple(files)
    return config


def _fingerprint(files: tuple[str, ...]) -> tuple:
    out = []
    for name in files:
        try:
            st = os.stat(name)
            out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


class WebConfigSource:
    """The config in force, reloaded when its files change (checked per connection) or on ``reload()``."""

    def __init__(self, path: str, recheck: float = RECHECK_SECONDS) -> None:
        self.path = path
        self.recheck = recheck
        self.config = load(path)  # at start-up a bad file is fatal, as in every exporter
        self._stamp = _fingerprint(self.config.files)
        self._next_check = time.monotonic() + recheck
        self._lock = threading.Lock()
        self.last_reload_ok = True
        self.last_success = time.time()
        self.reloads = {"success": 0, "failure": 0}

    def current(self) -> WebConfig:
        if time.monotonic() >= self._next_check:
            with self._lock:
                if time.monotonic() >= self._next_check:
                    self._next_check = time.monotonic() + self.recheck
                    if _fingerprint(self.config.files) != self._stamp:
                        self._reload_locked("changed on disk")
        return self.config

    def reload(self, reason: str = "SIGHUP") -> bool:
        with self._lock:
            return self._reload_locked(reason)

    def _reload_locked(self, reason: str) -> bool:
        files = self.config.files
        try:
            config = load(self.path)
        except WebConfigError as err:
            self._stamp = _fingerprint(files)  # retry on the next change, not on every connection
            self.last_reload_ok = False
            self.reloads["failure"] += 1
            log.error("web config %s (%s): keeping the previous one: %s", self.path, reason, err)
            return False
        self.config = config
        self._stamp = _fingerprint(config.files)
        self.last_reload_ok = True
        self.last_success = time.time()
        self.reloads["success"] += 1
        log.info("web config %s reloaded (%s)", self.path, reason)
        return True
