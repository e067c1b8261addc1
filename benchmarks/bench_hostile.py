"""Hostile-input and web figures of the real daemon (a subprocess on 127.0.0.1).

    python benchmarks/bench_hostile.py [--gib 4] [--tenants 200000] [--scrapes 50]

Prints: time and peak RSS (VmHWM) to skip a sparse line-less file; peak RSS after floods of distinct
tenants, 100 kB label values and 100 kB stream call ids; HTTPS scrape latency with basic auth, alone
and beside idle TLS clients that never finish their handshake; bcrypt's cost per uncached check.
Needs the [web] and [test] extras (cryptography makes the certificates).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import ssl
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bcrypt

from tests.certs import make_pki
from tests.helpers import ExporterProcess


def hwm_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(r.split()[1]) for r in status if r.startswith("VmHWM:")) / 1024


def line(**fields: object) -> str:
    return json.dumps({"v": 1, "event": "request", "model": "m", "provider": "p", "prompt_tokens": 1, **fields}) + "\n"


def memory(tmp: Path, gib: int, tenants: int) -> None:
    big = tmp / "lineless.jsonl"
    with open(big, "wb") as f:
        f.truncate(gib << 30)
    started = time.monotonic()
    with ExporterProcess(["--file", str(tmp / "*.jsonl"), "--poll-interval", "0.2"]) as exp:
        exp.wait_ready(timeout=600)
        exp.wait_value("llm_exporter_read_bytes_total", gib << 30, file=str(big), timeout=600)
        print(f"line-less file:   {gib} GiB skipped in {time.monotonic() - started:.1f} s from start-up, "
              f"peak RSS {hwm_mib(exp.proc.pid):.0f} MiB")
        long = "q" * 100_000
        with open(tmp / "flood.jsonl", "w") as f:
            for i in range(tenants):
                f.write(line(tenant_id=f"tenant-{i}", model=f"m{i % 50}"))
            for i in range(1000):
                f.write(line(tenant_id=f"{i}{long}", model=f"{i}{long}"))
                f.write(json.dumps({"v": 1, "event": "stream_start", "call_id": f"{i}{long}", "model": "m"}) + "\n")
        started = time.monotonic()
        exp.wait_value("llm_tokens_total", tenants + 1000, type="input", timeout=600)
        print(f"floods:           {tenants} distinct tenants + 1000 x 100 kB labels + 1000 x 100 kB call ids "
              f"in {time.monotonic() - started:.1f} s, peak RSS {hwm_mib(exp.proc.pid):.0f} MiB")


def web(tmp: Path, scrapes: int) -> None:
    pki = make_pki(tmp / "pki")
    digest = bcrypt.hashpw(b"pw", bcrypt.gensalt(10))
    started = time.perf_counter()
    bcrypt.checkpw(b"pw", digest)
    print(f"bcrypt cost 10:   {1000 * (time.perf_counter() - started):.0f} ms per uncached check "
          "(verdicts are cached per user and password)")
    yml = tmp / "web.yml"
    tls = {"cert_file": str(pki.server.cert), "key_file": str(pki.server.key)}
    yml.write_text(json.dumps({"tls_server_config": tls, "basic_auth_users": {"u": digest.decode()}}))
    log = tmp / "u.jsonl"
    log.write_text(line())
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    auth = "Basic " + base64.b64encode(b"u:pw").decode()
    with ExporterProcess(["--file", str(log), "--web.config.file", str(yml)]) as exp:
        url = f"https://127.0.0.1:{exp.port}/metrics"

        def scrape() -> float:
            t = time.perf_counter()
            req = urllib.request.Request(url, headers={"Authorization": auth})
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                r.read()
            return 1000 * (time.perf_counter() - t)

        deadline = time.monotonic() + 30
        while True:
            try:
                scrape()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        for label, lurkers in (("alone", 0), ("beside 30 silent TLS clients", 30)):
            socks = [socket.create_connection(("127.0.0.1", exp.port)) for _ in range(lurkers)]
            time.sleep(0.2)
            times = sorted(scrape() for _ in range(scrapes))
            print(f"HTTPS scrape {label}: median {statistics.median(times):.1f} ms, "
                  f"max {times[-1]:.1f} ms over {scrapes} (new connection + handshake each)")
            for s in socks:
                s.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=int, default=4)
    parser.add_argument("--tenants", type=int, default=200_000)
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        memory(Path(d), args.gib, args.tenants)
    with tempfile.TemporaryDirectory() as d:
        web(Path(d), args.scrapes)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
