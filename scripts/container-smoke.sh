#!/usr/bin/env bash
# Build the image and run it for real with podman (Debian package `podman`; `ENGINE=docker` works too).
#
# Checks, against the running container: /readyz and /metrics serve the mounted usage file, the image's
# HEALTHCHECK passes, the process runs as UID 65532 on a read-only root file system with the volume
# mounted read-only, and `stop` (SIGTERM to PID 1) ends it within 3 seconds with exit code 0.
#
# Exit codes: 0 all checks passed; 1 a check failed; 77 NOT RUN - the engine or the base image
# (python:3.12-slim, or PYTHON_IMAGE) could not be had on this machine. Where only PyPI and Debian
# are reachable, no base image can be pulled and this script says so (exit 77); the parts of the
# image that can be checked without an engine are in tests/test_container.py (CI runs those).
#
# Usage: bash scripts/container-smoke.sh            PYTHON_IMAGE=registry.example/python:3.12-slim ...
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE=${ENGINE:-podman}
BASE=${PYTHON_IMAGE:-python:3.12-slim}
TAG=${TAG:-localhost/llm-log-exporter:smoke}
PORT=${PORT:-19464}

not_run() { echo "NOT RUN: $*" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

if ! command -v "$ENGINE" >/dev/null 2>&1; then
  if [ "$ENGINE" = podman ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing podman (Debian package)..." >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman; } >/dev/null \
      || not_run "podman could not be installed from Debian's packages"
  else
    not_run "no container engine: install podman (apt-get install podman) or set ENGINE=docker"
  fi
fi

if ! "$ENGINE" image exists "$BASE" >/dev/null 2>&1 && ! "$ENGINE" image inspect "$BASE" >/dev/null 2>&1; then
  if ! pull_log=$("$ENGINE" pull "$BASE" 2>&1); then
    not_run "base image $BASE cannot be pulled here (no container registry reachable?): $(echo "$pull_log" | tail -1)"
  fi
fi

echo "building $TAG from $BASE with $ENGINE..." >&2
"$ENGINE" build --build-arg "PYTHON_IMAGE=$BASE" -t "$TAG" . >&2 || fail "image build failed"

data=$(mktemp -d)
name="llm-log-exporter-smoke-$$"
cleanup() { "$ENGINE" rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$data"; }
trap cleanup EXIT
printf '%s\n' '{"v": 1, "event": "request", "model": "gpt-4o", "provider": "openai", "tenant_id": "acme", "prompt_tokens": 12, "cost_usd": 0.5}' \
  > "$data/usage.jsonl"
chmod 0755 "$data"; chmod 0644 "$data/usage.jsonl"

"$ENGINE" run -d --name "$name" --read-only -p "127.0.0.1:$PORT:9464" \
  -v "$data:/var/log/llm:ro" "$TAG" >/dev/null || fail "container did not start"

get() { python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())' "$1"; }
for _ in $(seq 1 100); do
  get "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
metrics=$(get "http://127.0.0.1:$PORT/metrics") || fail "no /metrics: $("$ENGINE" logs "$name" 2>&1 | tail -5)"
echo "$metrics" | grep -q '^llm_tokens_total{.*tenant_id="acme".*type="input".*} 12.0$' \
  || fail "llm_tokens_total for acme is not 12"
"$ENGINE" healthcheck run "$name" >/dev/null 2>&1 || [ "$ENGINE" = docker ] || fail "HEALTHCHECK failed"
uid=$("$ENGINE" exec "$name" python -c 'import os; print(os.getuid())')
[ "$uid" = 65532 ] || fail "runs as uid $uid, not 65532"

start=$(date +%s.%N)
"$ENGINE" stop -t 10 "$name" >/dev/null
took=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$start" "$(date +%s.%N)")
code=$("$ENGINE" inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || fail "exit code after SIGTERM: $code"
python3 -c "import sys; sys.exit(float(sys.argv[1]) >= 3)" "$took" || fail "stop took ${took}s"
echo "OK: image $TAG served the mounted log, passed its healthcheck, ran as 65532 read-only, stopped in ${took}s with 0"
