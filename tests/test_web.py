"""The web endpoint under --web.config.file: TLS, client certificates, basic auth, reloads, hostile clients.

Everything runs against the real daemon as a subprocess on 127.0.0.1, with certificates made by
``tests/certs.py``; the scrape tests use a real Prometheus (session fixture ``prometheus``).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from llm_log_exporter.exposition.server import exposure_warning
from llm_log_exporter.exposition.webconfig import WebConfig, WebConfigError, load
from tests.certs import PKI, Pair, make_pki
from tests.helpers import ROOT, ExporterProcess, parse_exposition, value
from tests.prom import PrometheusServer

bcrypt = pytest.importorskip("bcrypt")
pytest.importorskip("yaml")

USER, PASSWORD = "prometheus", "correct horse battery staple"
LINE = json.dumps({"v": 1, "event": "request", "model": "m", "provider": "p", "tenant_id": "acme",
                   "prompt_tokens": 42}) + "\n"


def bcrypt_hash(password: str, rounds: int = 4) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def log(log: Path) -> Path:
    """The shared log path, holding one line."""
    log.write_text(LINE)
    return log


def write_config(path: Path, pki: PKI, *, users: dict[str, str] | None = None, client_auth: str | None = None,
                 **tls_extra: object) -> Path:
    tls: dict[str, object] = {"cert_file": str(pki.server.cert), "key_file": str(pki.server.key), **tls_extra}
    if client_auth:
        tls.update(client_auth_type=client_auth, client_ca_file=str(pki.ca))
    config: dict[str, object] = {"tls_server_config": tls}
    if users is not None:
        config["basic_auth_users"] = users
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def auth_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def https(port: int, pki: PKI, path: str = "/metrics", *, method: str = "GET", auth: tuple[str, str] | None = None,
          cert: Pair | None = None, timeout: float = 5.0, body: bytes | None = None) -> tuple[int, dict, bytes]:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert.cert), str(cert.key))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=timeout)
    try:
        headers = {"Authorization": auth_header(*auth)} if auth else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def wait_https(exp: ExporterProcess, pki: PKI, timeout: float = 30.0, **kw: object) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if exp.proc.poll() is not None:
            raise AssertionError(f"exporter exited: {exp.proc.stderr.read()}")
        try:
            if https(exp.port, pki, "/readyz", timeout=2, **kw)[0] == 200:  # type: ignore[arg-type]
                return
        except (OSError, ssl.SSLError):
            pass
        time.sleep(0.1)
    raise AssertionError("exporter never became ready over TLS")


def threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(row.split()[1]) for row in status if row.startswith("Threads:"))


# ------------------------------------------------------------------------------------------
# Parsing the exporter-toolkit file
# ------------------------------------------------------------------------------------------


def test_valid_configs_load(tmp_path: Path, pki: PKI) -> None:
    (tmp_path / "empty.yml").write_text("")
    plain = load(str(tmp_path / "empty.yml"))
    assert not plain.tls and plain.auth is None
    yml = tmp_path / "web.yml"
    yml.write_text(f"""
tls_server_config:
  cert_file: {pki.server.cert}
  key_file: {pki.server.key}
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: {pki.ca}
  client_allowed_sans: [prometheus]
  min_version: TLS13
  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
  prefer_server_cipher_suites: true
http_server_config:
  http2: true
  headers:
    X-Frame-Options: deny
    Strict-Transport-Security: max-age=31536000
basic_auth_users:
  {USER}: {bcrypt_hash(PASSWORD)}
""")
    config = load(str(yml))
    assert config.tls and config.ssl_context is not None
    assert config.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert config.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert config.allowed_sans == {"prometheus"}
    assert config.headers == {"X-Frame-Options": "deny", "Strict-Transport-Security": "max-age=31536000"}
    assert config.auth is not None and config.auth.check(auth_header(USER, PASSWORD))
    assert not config.auth.check(auth_header(USER, "wrong")) and not config.auth.check(None)
    assert not config.auth.check(auth_header("nobody", PASSWORD)) and not config.auth.check("Basic !!!")
    assert set(config.files) == {str(yml), str(pki.server.cert), str(pki.server.key), str(pki.ca)}


@pytest.mark.parametrize(("text", "message"), [
    ("tls_server_config: {cert_file: CERT}", "cert_file and key_file are both required"),
    ("tls_server_config: {cert_file: CERT, key_file: KEY, bogus: 1}", "unknown key 'bogus'"),
    ("tls_srever_config: {}", "unknown key 'tls_srever_config'"),
    ("tls_server_config: {cert_file: CERT, key_file: /nonexistent}", "is not a readable file"),
    ("tls_server_config: {cert_file: KEY, key_file: KEY}", "cannot load"),
    ("tls_server_config: {cert_file: CERT, key_file: KEY, client_auth_type: RequireAnyClientCert, "
     "client_ca_file: CA}", "not supported"),
    ("tls_server_config: {cert_file: CERT, key_file: KEY, client_auth_type: Maybe}", "unknown value 'Maybe'"),
    ("tls_server_config: {cert_file: CERT, key_file: KEY, client_auth_type: RequireAndVerifyClientCert}",
     "needs client_ca_file"),
    ("tls_server_config: {cert_file: CERT, key_file: KEY, client_ca_file: CA}", "client_auth_type is NoClientCert"),
    ("tls_server_config: {cert_file: CERT, key_file: KEY, min_version: TLS13, max_version: TLS12}",
     "min_version is above max_version"),
    ("tls_server_config: {cert_file: CERT, key_file: KEY, min_version: SSL3}", "not one of"),
    ("tls_server_config: {cert_file: CERT, key_file: KEY, cipher_suites: [TLS_FANCY]}", "unknown suite"),
    ("tls_server_config: {cert_file: CERT, key_file: KEY, client_allowed_sans: [x]}",
     "needs client_auth_type RequireAndVerifyClientCert"),
    ("basic_auth_users: {alice: plaintext}", "not a bcrypt hash"),
    ("http_server_config: {headers: {Server: x}}", "cannot be configured"),
    ("tls_server_config: [1, 2]", "must be a mapping"),
    ("a: [unclosed", "not valid YAML"),
])
def test_invalid_configs_are_one_line_errors(tmp_path: Path, pki: PKI, text: str, message: str) -> None:
    yml = tmp_path / "web.yml"
    yml.write_text(text.replace("CERT", str(pki.server.cert)).replace("KEY", str(pki.server.key))
                   .replace("CA", str(pki.ca)))
    with pytest.raises(WebConfigError) as err:
        load(str(yml))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path, pki: PKI) -> None:
    yml = pki.ca.parent / "web.yml"
    yml.write_text("tls_server_config: {cert_file: server.crt, key_file: server.key}")
    assert load(str(yml)).tls


@pytest.mark.parametrize("missing", ["yaml", "bcrypt"])
def test_missing_web_extra_is_a_one_line_error(tmp_path: Path, pki: PKI, log: Path, missing: str) -> None:
    yml = write_config(tmp_path / "web.yml", pki, users={USER: bcrypt_hash(PASSWORD)})
    code = f"import sys; sys.modules[{missing!r}] = None; from llm_log_exporter.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "--file", str(log), "--host", "127.0.0.1", "--port", "0",
         "--web.config.file", str(yml)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
    hint = "pip install pyyaml bcrypt (from a checkout of llm-log-exporter: pip install '.[web]')"
    assert errors and hint in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_invalid_config_at_start_is_fatal_and_clear(tmp_path: Path, log: Path) -> None:
    yml = tmp_path / "web.yml"
    yml.write_text("basic_auth_users: {alice: nope}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LLM_LOG_EXPORTER_WEB_CONFIG_FILE": str(yml)}
    proc = subprocess.run([sys.executable, "-m", "llm_log_exporter", "--file", str(log), "--host", "127.0.0.1",
                           "--port", "0"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 1 and "basic_auth_users.alice: not a bcrypt hash" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_exposure_warning() -> None:
    plain = WebConfig()
    assert exposure_warning("127.0.0.1", plain) is None
    assert exposure_warning("::1", plain) is None
    assert "without TLS or basic auth" in (exposure_warning("0.0.0.0", plain) or "")
    assert "without TLS or basic auth" in (exposure_warning("::", plain) or "")
    assert "without TLS or basic auth" in (exposure_warning("192.168.1.20", plain) or "")
    assert exposure_warning("0.0.0.0", WebConfig(ssl_context=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))) is None
    auth_only = WebConfig(auth=object())  # type: ignore[arg-type]
    assert "clear text" in (exposure_warning("0.0.0.0", auth_only) or "")


def test_default_host_is_localhost_and_loopback_does_not_warn(log: Path) -> None:
    from llm_log_exporter.cli import main
    from llm_log_exporter.daemon import Config

    assert Config(files=[]).host == "localhost"
    assert next(p for p in main.params if p.name == "host").default == "localhost"
    with ExporterProcess(["--file", str(log)]) as exp:
        exp.wait_ready()
    assert "without TLS" not in exp.stderr and exp.proc.returncode == 0


# ------------------------------------------------------------------------------------------
# TLS + basic auth against the real daemon
# ------------------------------------------------------------------------------------------


def test_basic_auth_over_tls(tmp_path: Path, pki: PKI, log: Path) -> None:
    yml = write_config(tmp_path / "web.yml", pki, users={USER: bcrypt_hash(PASSWORD)})
    creds = (USER, PASSWORD)
    with ExporterProcess(["--file", str(log), "--web.config.file", str(yml)]) as exp:
        wait_https(exp, pki, auth=creds)
        status, headers, body = https(exp.port, pki, auth=creds)
        assert status == 200 and value(parse_exposition(body.decode()), "llm_tokens_total", type="input") == 42
        status, headers, _ = https(exp.port, pki)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
        assert https(exp.port, pki, auth=(USER, "wrong"))[0] == 401
        assert https(exp.port, pki, auth=("intruder", PASSWORD))[0] == 401
        assert https(exp.port, pki, "/healthz")[0] == 401  # like the toolkit: every path is protected
        assert https(exp.port, pki, "/healthz", auth=creds)[:3:2] == (200, b"ok\n")
        # Methods and paths, once authenticated.
        assert https(exp.port, pki, method="POST", body=b"x", auth=creds)[0] == 405
        assert https(exp.port, pki, "/readyz", method="DELETE", auth=creds)[0] == 405
        assert https(exp.port, pki, "/nope", method="POST", body=b"x", auth=creds)[0] == 404
        assert https(exp.port, pki, "/nope", auth=creds)[0] == 404
        assert https(exp.port, pki, method="PUT", body=b"x")[0] == 401
        # Plain HTTP on the TLS port is refused, and the server keeps serving.
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            conn = http.client.HTTPConnection("127.0.0.1", exp.port, timeout=5)
            conn.request("GET", "/metrics")
            conn.getresponse().read()
        status, _, body = https(exp.port, pki, auth=creds)
        samples = parse_exposition(body.decode())
        assert status == 200
        assert value(samples, "llm_exporter_http_connection_errors_total", reason="auth_failed") == 5
        assert value(samples, "llm_exporter_http_connection_errors_total", reason="handshake_failed") >= 1
        assert value(samples, "llm_exporter_web_config_last_reload_successful") == 1
    assert exp.proc.returncode == 0, exp.stderr
    assert "https://127.0.0.1" in exp.stderr


def test_client_certificates(tmp_path: Path, pki: PKI, log: Path) -> None:
    yml = write_config(tmp_path / "web.yml", pki, client_auth="RequireAndVerifyClientCert",
                       client_allowed_sans=["prometheus"])
    with ExporterProcess(["--file", str(log), "--web.config.file", str(yml)]) as exp:
        wait_https(exp, pki, cert=pki.client)
        assert https(exp.port, pki, cert=pki.client)[0] == 200
        for cert in (None, pki.rogue_client, pki.other_client):  # none, untrusted CA, SAN not allowed
            with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
                https(exp.port, pki, cert=cert)
        _, _, body = https(exp.port, pki, cert=pki.client)
        samples = parse_exposition(body.decode())
        assert value(samples, "llm_exporter_http_connection_errors_total", reason="handshake_failed") >= 2
        assert value(samples, "llm_exporter_http_connection_errors_total", reason="client_cert_rejected") == 1


def test_reload_on_change_on_sighup_and_bad_reload_keeps_old(tmp_path: Path, pki: PKI, log: Path) -> None:
    yml = write_config(tmp_path / "web.yml", pki, users={USER: bcrypt_hash("one")})
    with ExporterProcess(["--file", str(log), "--web.config.file", str(yml)]) as exp:
        wait_https(exp, pki, auth=(USER, "one"))
        # 1. Changed on disk: picked up by the next connections (checked at most once a second).
        write_config(yml, pki, users={USER: bcrypt_hash("two")})
        exp.wait_until(lambda: https(exp.port, pki, auth=(USER, "two"))[0] == 200, 10, "new password accepted")
        assert https(exp.port, pki, auth=(USER, "one"))[0] == 401
        # 2. A broken file: logged, the previous config stays in force, the self-metric says so.
        good = yml.read_text()
        yml.write_text("basic_auth_users: [")
        exp.wait_until(
            lambda: value(parse_exposition(https(exp.port, pki, auth=(USER, "two"))[2].decode()),
                          "llm_exporter_web_config_last_reload_successful") == 0, 10, "failed reload reported")
        # 3. SIGHUP: same size and mtime as before, so only the signal can reveal the change.
        yml.write_text(good)
        exp.wait_until(lambda: value(parse_exposition(https(exp.port, pki, auth=(USER, "two"))[2].decode()),
                                     "llm_exporter_web_config_last_reload_successful") == 1, 10, "good file back")
        stat = yml.stat()
        new = good.replace(json.loads(good)["basic_auth_users"][USER], bcrypt_hash("six"))
        assert len(new) == len(good)
        yml.write_text(new)
        os.utime(yml, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        time.sleep(1.5)
        assert https(exp.port, pki, auth=(USER, "six"))[0] == 401  # unnoticed without the signal
        exp.proc.send_signal(signal.SIGHUP)
        exp.wait_until(lambda: https(exp.port, pki, auth=(USER, "six"))[0] == 200, 10, "SIGHUP reload")
    assert exp.proc.returncode == 0
    assert "keeping the previous one" in exp.stderr and "reloaded (SIGHUP)" in exp.stderr


@pytest.mark.parametrize("client_auth", [None, "RequireAndVerifyClientCert"])
def test_healthcheck_and_config_file_speak_the_web_config(tmp_path: Path, pki: PKI, log: Path,
                                                          client_auth: str | None) -> None:
    write_config(tmp_path / "web.yml", pki, users={USER: bcrypt_hash(PASSWORD)}, client_auth=client_auth)
    (tmp_path / "exporter.yml").write_text(f"file: [{log}]\nweb.config.file: web.yml\n")  # relative to this file
    with ExporterProcess(["--config", str(tmp_path / "exporter.yml")]) as exp:
        wait_https(exp, pki, auth=(USER, PASSWORD), cert=pki.client if client_auth else None)
        probe = subprocess.run(
            [sys.executable, "-m", "llm_log_exporter", "--config", str(tmp_path / "exporter.yml"),
             "--host", "127.0.0.1", "--port", str(exp.port), "healthcheck"],
            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert probe.returncode == 0, probe.stdout + probe.stderr
        assert f"127.0.0.1:{exp.port}" in probe.stdout + probe.stderr
    stopped = subprocess.run(
        [sys.executable, "-m", "llm_log_exporter", "--config", str(tmp_path / "exporter.yml"),
         "--host", "127.0.0.1", "--port", str(exp.port), "healthcheck"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert stopped.returncode == 1


# ------------------------------------------------------------------------------------------
# Hostile clients
# ------------------------------------------------------------------------------------------

# A TLS record header announcing a 512-byte ClientHello, followed by only its first bytes.
PARTIAL_CLIENT_HELLO = bytes.fromhex("160301020001000200fc0303") + os.urandom(20)


def test_slow_loris_does_not_delay_a_scrape(tmp_path: Path, pki: PKI, log: Path) -> None:
    yml = write_config(tmp_path / "web.yml", pki, users={USER: bcrypt_hash(PASSWORD)})
    creds = (USER, PASSWORD)
    args = ["--file", str(log), "--web.config.file", str(yml), "--web.read-timeout", "3"]
    with ExporterProcess(args) as exp:
        wait_https(exp, pki, auth=creds)
        https(exp.port, pki, auth=creds)  # warm the bcrypt verdict cache, as a scraper's second scrape would
        lurkers = [socket.create_connection(("127.0.0.1", exp.port)) for _ in range(8)]  # say nothing
        partial = socket.create_connection(("127.0.0.1", exp.port))
        partial.sendall(PARTIAL_CLIENT_HELLO)
        lurkers.append(partial)
        dripping = socket.create_connection(("127.0.0.1", exp.port))  # one byte at a time
        stop = threading.Event()

        def drip() -> None:
            for byte in PARTIAL_CLIENT_HELLO:
                if stop.wait(0.5):
                    return
                try:
                    dripping.send(bytes([byte]))
                except OSError:
                    return

        threading.Thread(target=drip, daemon=True).start()
        try:
            time.sleep(0.5)  # the lurkers are accepted and stuck in their handshakes
            for _ in range(5):
                started = time.monotonic()
                status, _, body = https(exp.port, pki, auth=creds, timeout=5)
                elapsed = time.monotonic() - started
                assert status == 200 and b"llm_tokens_total" in body
                assert elapsed < 1.5, f"scrape took {elapsed:.2f} s next to slow clients"
            # The server hangs up on them once the handshake deadline passes, the dripping one included.
            for sock in [*lurkers, dripping]:
                sock.settimeout(10)
                with contextlib.suppress(ConnectionResetError):
                    assert sock.recv(1024) == b""
            _, _, body = https(exp.port, pki, auth=creds)
            timeouts = value(parse_exposition(body.decode()), "llm_exporter_http_connection_errors_total",
                             reason="handshake_timeout")
            assert timeouts == 10
        finally:
            stop.set()
            for sock in [*lurkers, dripping]:
                sock.close()


def test_connections_are_bounded(log: Path) -> None:
    args = ["--file", str(log), "--web.max-connections", "4", "--web.read-timeout", "2"]
    with ExporterProcess(args) as exp:
        exp.wait_ready()
        idle_threads = threads_of(exp.proc.pid)
        lurkers = [socket.create_connection(("127.0.0.1", exp.port)) for _ in range(12)]
        try:
            time.sleep(1.0)
            assert threads_of(exp.proc.pid) <= idle_threads + 4
            # Further connections wait in the backlog until slots free up: served, not dropped.
            started = time.monotonic()
            status, _ = _plain_get(exp.port, timeout=60)
            assert status == 200
            print(f"scrape behind 12 idle connections, 4 slots, 2 s timeout: {time.monotonic() - started:.1f} s")
            assert threads_of(exp.proc.pid) <= idle_threads + 4
        finally:
            for sock in lurkers:
                sock.close()


def _plain_get(port: int, timeout: float) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_slow_plain_http_request_is_cut_off(log: Path) -> None:
    with ExporterProcess(["--file", str(log), "--web.read-timeout", "2"]) as exp:
        exp.wait_ready()
        sock = socket.create_connection(("127.0.0.1", exp.port))
        sock.settimeout(15)
        started = time.monotonic()
        try:
            for chunk in (b"GET /metrics HTTP/1.1\r\n", b"Host: x\r\n", b"X-A: 1\r\n", b"X-B: 2\r\n", b"X-C: 3\r\n"):
                sock.sendall(chunk)  # each piece well inside the timeout, the whole head not
                time.sleep(0.9)
        except OSError:
            pass
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(1024) == b""
        assert time.monotonic() - started < 8
        sock.close()
        samples = exp.scrape()
        assert value(samples, "llm_exporter_http_connection_errors_total", reason="read_timeout") == 1


# ------------------------------------------------------------------------------------------
# A real Prometheus over TLS, with basic auth and with a client certificate
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_prometheus_scrapes_over_tls(tmp_path: Path, pki: PKI, log: Path, prometheus: PrometheusServer) -> None:
    hashed = bcrypt_hash(PASSWORD, rounds=10)
    auth_yml = write_config(tmp_path / "auth.yml", pki, users={USER: hashed})
    mtls_yml = write_config(tmp_path / "mtls.yml", pki, users={USER: hashed},
                            client_auth="RequireAndVerifyClientCert")
    with ExporterProcess(["--file", str(log), "--web.config.file", str(auth_yml)]) as auth_exp, \
         ExporterProcess(["--file", str(log), "--web.config.file", str(mtls_yml)]) as mtls_exp:
        wait_https(auth_exp, pki, auth=(USER, PASSWORD))
        wait_https(mtls_exp, pki, auth=(USER, PASSWORD), cert=pki.client)
        basic = {"username": USER, "password": PASSWORD}
        prometheus.reload([
            {"job_name": "tls_basic_auth", "scheme": "https", "tls_config": {"ca_file": str(pki.ca)},
             "basic_auth": basic, "static_configs": [{"targets": [f"127.0.0.1:{auth_exp.port}"]}]},
            {"job_name": "tls_client_cert", "scheme": "https",
             "tls_config": {"ca_file": str(pki.ca), "cert_file": str(pki.client.cert),
                            "key_file": str(pki.client.key)},
             "basic_auth": basic, "static_configs": [{"targets": [f"127.0.0.1:{mtls_exp.port}"]}]},
            {"job_name": "wrong_password", "scheme": "https", "tls_config": {"ca_file": str(pki.ca)},
             "basic_auth": {"username": USER, "password": "guess"},
             "static_configs": [{"targets": [f"127.0.0.1:{auth_exp.port}"]}]},
            {"job_name": "no_client_cert", "scheme": "https", "tls_config": {"ca_file": str(pki.ca)},
             "basic_auth": basic, "static_configs": [{"targets": [f"127.0.0.1:{mtls_exp.port}"]}]},
        ])
        deadline = time.monotonic() + 60
        targets: dict[str, dict] = {}
        while time.monotonic() < deadline:
            targets = {t["labels"]["job"]: t for t in prometheus.api("targets", state="active")["activeTargets"]}
            if len(targets) == 4 and all(t["health"] != "unknown" for t in targets.values()) and \
                    targets["tls_basic_auth"]["health"] == targets["tls_client_cert"]["health"] == "up":
                break
            time.sleep(0.2)
        assert targets["tls_basic_auth"]["health"] == "up", targets
        assert targets["tls_client_cert"]["health"] == "up", targets
        assert targets["wrong_password"]["health"] == "down" and "401" in targets["wrong_password"]["lastError"]
        assert targets["no_client_cert"]["health"] == "down", targets["no_client_cert"]
        for job in ("tls_basic_auth", "tls_client_cert"):
            result = prometheus.wait_query(f'llm_tokens_total{{job="{job}",type="input"}}')
            assert float(result[0]["value"][1]) == 42
            assert float(targets[job]["lastScrapeDuration"]) < 1.0
