#!/usr/bin/env bash
# Build the image and run it the way Kubernetes runs it, with podman (Debian package `podman`) or
# ENGINE=docker.
#
# Checks against the running container: /readyz and /metrics serve the mounted usage file; the image's
# HEALTHCHECK survived the build and passes; the image's user is 65532 and it also runs as an arbitrary
# UID with group 0 (as OpenShift assigns); the root file system is read-only *without* writable tmpfs
# (podman's --read-only alone keeps /tmp, /var/tmp and /run writable; Kubernetes' readOnlyRootFilesystem
# does not), the volume is read-only, no capabilities, no_new_privs; `stop` (SIGTERM to PID 1) ends it
# within 3 seconds with exit code 0. A failure prints the engine's own error or the container's log.
#
#   bash scripts/container-smoke.sh               build the image, run it, check it
#   bash scripts/container-smoke.sh --build-only  build the image and print its tag
#   bash scripts/container-smoke.sh --base-only   make sure the base image exists and print its name
#   IMAGE=localhost/llm-log-exporter:x bash scripts/container-smoke.sh    check an image built before
#
# The base image is PYTHON_IMAGE (default python:3.12-slim): found locally, else pulled. Where no
# registry is reachable (this project's CI reaches only PyPI and Debian) and PYTHON_IMAGE is not set,
# scripts/local-base-image.sh makes a local stand-in from Debian packages (root only; LOCAL_BASE=0 to
# refuse). Other settings: PIP_INDEX_URL (the build's package index), TAG, PORT (default: a free one),
# RUN_AS (1000680000:0), BUILD_OPTS (more build flags, e.g. --layers=false), PODMAN_STORAGE_DRIVER,
# PODMAN_ROOT, PODMAN_RUNROOT (podman's --storage-driver/--root/--runroot), CONTAINERS_CONF (default
# scripts/podman/containers.conf where no systemd runs, as on this project's CI machines).
#
# Exit codes: 0 all checks passed; 1 a check failed; 2 usage; 77 NOT RUN - no container engine, or no
# base image and no way to make one on this machine (the reason is printed).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=check
case "${1:-}" in
  --build-only) mode=build ;;
  --base-only) mode=base ;;
  "") ;;
  *) echo "usage: $0 [--build-only | --base-only]" >&2; exit 2 ;;
esac

ENGINE=${ENGINE:-podman}
LOCAL_BASE_TAG=localhost/python:3.12-slim
TAG=${TAG:-localhost/llm-log-exporter:smoke}
RUN_AS=${RUN_AS:-1000680000:0}

not_run() { echo "NOT RUN: $*" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "container-smoke: $*" >&2; }

if ! command -v "$ENGINE" >/dev/null 2>&1; then
  if [ "$ENGINE" = podman ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    note "installing podman and runc (Debian packages)..."
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        --no-install-recommends podman runc; } >/dev/null || not_run "podman could not be installed from Debian's packages"
  else
    not_run "no container engine: install podman (apt-get install podman) or set ENGINE=docker"
  fi
fi

E=("$ENGINE")
if [ "$ENGINE" = podman ]; then
  [ -n "${PODMAN_STORAGE_DRIVER:-}" ] && E+=(--storage-driver "$PODMAN_STORAGE_DRIVER")
  [ -n "${PODMAN_ROOT:-}" ] && E+=(--root "$PODMAN_ROOT")
  [ -n "${PODMAN_RUNROOT:-}" ] && E+=(--runroot "$PODMAN_RUNROOT")
  if [ -z "${CONTAINERS_CONF:-}" ] && [ ! -d /run/systemd/system ]; then
    export CONTAINERS_CONF=$PWD/scripts/podman/containers.conf  # runc, cgroupfs, ulimits within the hard limit
  fi
fi

has_image() { "${E[@]}" image inspect "$1" >/dev/null 2>&1; }

base_image() {  # prints the image to build FROM
  local base=${PYTHON_IMAGE:-python:3.12-slim} pulled rc=0
  if has_image "$base"; then echo "$base"; return; fi
  if [ -z "${PYTHON_IMAGE:-}" ] && has_image "$LOCAL_BASE_TAG"; then
    note "using $LOCAL_BASE_TAG, the local stand-in made by scripts/local-base-image.sh (Debian's Python)"
    echo "$LOCAL_BASE_TAG"; return
  fi
  if pulled=$("${E[@]}" pull "$base" 2>&1); then echo "$base"; return; fi
  pulled=$(echo "$pulled" | tail -n 1)
  if [ -n "${PYTHON_IMAGE:-}" ] || [ "${LOCAL_BASE:-1}" = 0 ] || [ "$ENGINE" != podman ]; then
    not_run "base image $base cannot be pulled here: $pulled"
  fi
  note "$base cannot be pulled here ($pulled): making a local stand-in from Debian packages"
  bash scripts/local-base-image.sh "$LOCAL_BASE_TAG" >&2 || rc=$?
  [ "$rc" = 77 ] && not_run "no base image: $base cannot be pulled and scripts/local-base-image.sh cannot run here"
  [ "$rc" = 0 ] || fail "scripts/local-base-image.sh failed (exit $rc)"
  echo "$LOCAL_BASE_TAG"
}

build_image() {  # $1 = base; builds $TAG with the OCI labels filled in
  local started=$SECONDS log revision source documentation
  revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  source=${SOURCE:-$(git remote get-url origin 2>/dev/null || true)}
  documentation=${DOCUMENTATION:-${source:+${source%.git}/blob/$revision/docs/deploy.md}}
  local args=(build --build-arg "PYTHON_IMAGE=$1" -t "$TAG"
    --build-arg "VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' llm_log_exporter/__init__.py)"
    --build-arg "REVISION=$revision" --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    --build-arg "SOURCE=$source" --build-arg "DOCUMENTATION=$documentation")
  [ "$ENGINE" = podman ] && args+=(--format docker)  # the OCI format drops HEALTHCHECK
  [ -n "${PIP_INDEX_URL:-}" ] && args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
  # shellcheck disable=SC2206  # BUILD_OPTS is a list of flags
  args+=(${BUILD_OPTS:-})
  log=$(mktemp)
  if ! "${E[@]}" "${args[@]}" . >"$log" 2>&1; then
    tail -n 40 "$log" >&2; rm -f "$log"
    fail "image build failed: ${E[*]} ${args[*]} ."
  fi
  rm -f "$log"
  note "built $TAG from $1 in $((SECONDS - started)) s"
}

if [ "$mode" = base ]; then base_image; exit 0; fi
if [ -z "${IMAGE:-}" ]; then
  base=$(base_image)
  build_image "$base"
  IMAGE=$TAG
fi
if [ "$mode" = build ]; then echo "$IMAGE"; exit 0; fi

# --- run it as Kubernetes would, and check ---------------------------------------------------------
data=$(mktemp -d)
name="llm-log-exporter-smoke-$$"
cleanup() { "${E[@]}" rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$data"; }
trap cleanup EXIT
printf '%s\n' '{"v": 1, "event": "request", "model": "gpt-4o", "provider": "openai", "tenant_id": "acme", "prompt_tokens": 12, "cost_usd": 0.5}' \
  > "$data/usage.jsonl"
chmod 0755 "$data"; chmod 0644 "$data/usage.jsonl"
port=${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}

secure=(--read-only --cap-drop ALL --security-opt no-new-privileges --user "$RUN_AS")
[ "$ENGINE" = podman ] && secure+=(--read-only-tmpfs=false)
if ! err=$("${E[@]}" run -d --name "$name" "${secure[@]}" -p "127.0.0.1:$port:9464" \
    -v "$data:/var/log/llm:ro" "$IMAGE" 2>&1 >/dev/null); then
  fail "the container did not start: $err"
fi
container_log() { "${E[@]}" logs "$name" 2>&1 | tail -n 20; "${E[@]}" inspect --format 'state: {{.State.Status}} exit {{.State.ExitCode}} {{.State.Error}}' "$name" 2>&1; }

get() { python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())' "$1"; }
ready=
for _ in $(seq 1 150); do
  if get "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.2
done
[ -n "$ready" ] || fail "/readyz never answered on 127.0.0.1:$port:
$(container_log)"
metrics=$(get "http://127.0.0.1:$port/metrics") || fail "no /metrics: $(container_log)"
echo "$metrics" | grep -q '^llm_tokens_total{.*tenant_id="acme".*type="input".*} 12.0$' \
  || fail "llm_tokens_total for acme is not 12:
$(echo "$metrics" | grep '^llm_' | head -n 20)"

health=$("${E[@]}" image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE" 2>/dev/null || true)
case "$health" in *healthcheck*) ;; *) fail "the image has no HEALTHCHECK (podman build needs --format docker): $health" ;; esac
if [ "$ENGINE" = podman ]; then
  out=$("${E[@]}" healthcheck run "$name" 2>&1) || fail "HEALTHCHECK failed: $out"
fi
user=$("${E[@]}" image inspect --format '{{.Config.User}}' "$IMAGE")
[ "$user" = 65532:65532 ] || fail "the image's user is '$user', not 65532:65532"
ids=$("${E[@]}" exec "$name" python -c 'import os; print(f"{os.getuid()}:{os.getgid()}")' 2>&1) || fail "exec: $ids"
[ "$ids" = "$RUN_AS" ] || fail "runs as $ids, not $RUN_AS"
# Nothing writable: the root (not even /tmp, the WORKDIR), the volume; no capabilities, no_new_privs.
probe=$("${E[@]}" exec "$name" python -c '
import os
bad = []
for path in ("/x", "/tmp/x", "/var/tmp/x", "/run/x", "/var/log/llm/x"):
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        bad.append(path)
    except OSError:
        pass
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print("writable:" + ",".join(bad), "CapEff:" + status["CapEff"].strip(), "NoNewPrivs:" + status["NoNewPrivs"].strip())
' 2>&1) || fail "exec: $probe"
[ "$probe" = "writable: CapEff:0000000000000000 NoNewPrivs:1" ] || fail "not locked down like a pod: $probe"

start=$(date +%s.%N)
"${E[@]}" stop -t 10 "$name" >/dev/null
took=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$start" "$(date +%s.%N)")
code=$("${E[@]}" inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || fail "exit code after SIGTERM: $code: $(container_log)"
python3 -c "import sys; sys.exit(float(sys.argv[1]) >= 3)" "$took" || fail "stop took ${took}s"
echo "OK: $IMAGE served the mounted log as $RUN_AS on a read-only root without tmpfs, no capabilities," \
  "no_new_privs, passed its HEALTHCHECK, stopped in ${took}s with 0"
