#!/usr/bin/env bash
# Make a local stand-in for the Dockerfile's base image (python:3.12-slim) from Debian packages, for
# machines that reach Debian's mirror and PyPI but no container registry (this project's CI).
#
#   bash scripts/local-base-image.sh [TAG]          TAG defaults to localhost/python:3.12-slim
#
# The image is Debian (the host's suite, else bookworm) made with debootstrap: minbase plus python3,
# pip, venv and CA certificates, imported with `podman import` (nothing is pulled, nothing is RUN).
# Like python:*-slim it has `python` and `pip` in /usr/local/bin, allows a system-wide `pip install`
# (no PEP 668 marker), LANG=C.UTF-8 and CMD ["python3"]. It is *not* the official image: Python is
# the suite's (3.11 on bookworm), and the host's CA bundle is copied in (HOST_CA=1, the default) so
# that pip in the Dockerfile's RUN steps reaches the package index the way the host does (through a
# TLS-inspecting proxy, say). Use it only to build and test here; publish images built FROM the real
# base (docs/deploy.md, "Container").
#
# Idempotent and safe to run twice at once: a lock serialises runs, and an existing TAG ends the run
# at once (FORCE=1 rebuilds). About 2 minutes from nothing, most of it debootstrap.
#
# When the workplace's own tool exists beside this checkout (../shared/tools/local-python-image.sh) and
# podman is installed, it does the job; otherwise this script does it itself.
#
# Environment (all optional; the same names as that tool):
#   PODMAN_STORAGE_DRIVER, PODMAN_ROOT, PODMAN_RUNROOT   podman --storage-driver/--root/--runroot
#   MIRROR (the first Debian URI of the host's apt sources), SUITE, HOST_CA (1), FORCE (0), WORKDIR
#
# Exit codes: 0 the image exists; 77 it cannot be made here (not root, no apt-get or debootstrap);
# 1 an error (the failing step's output is printed).
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${1:-localhost/python:3.12-slim}
not_here() { echo "local-base-image: cannot make $TAG here: $*" >&2; exit 77; }
say() { printf '[local-base-image] %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || not_here "needs root (debootstrap, rootful podman)"

P=(podman)
[ -n "${PODMAN_STORAGE_DRIVER:-}" ] && P+=(--storage-driver "$PODMAN_STORAGE_DRIVER")
[ -n "${PODMAN_ROOT:-}" ] && P+=(--root "$PODMAN_ROOT")
[ -n "${PODMAN_RUNROOT:-}" ] && P+=(--runroot "$PODMAN_RUNROOT")

# One run at a time (CI starts one in the background; the tests' fixture may call it meanwhile).
exec 9>"${TMPDIR:-/tmp}/llm-log-exporter-base-image.lock"
flock 9

if [ "${FORCE:-0}" != 1 ] && command -v podman >/dev/null 2>&1 && "${P[@]}" image exists "$TAG" 2>/dev/null; then
  say "$TAG exists"
  exit 0
fi

tool=../shared/tools/local-python-image.sh
if [ -f "$tool" ] && command -v podman >/dev/null 2>&1; then
  # That tool picks vfs unless told otherwise: give it the driver this store already uses.
  driver=${PODMAN_STORAGE_DRIVER:-$("${P[@]}" info --format '{{.Store.GraphDriverName}}' 2>/dev/null || echo vfs)}
  say "using $tool (storage driver $driver)"
  PODMAN_STORAGE_DRIVER=$driver bash "$tool" "$TAG"
  exit $?
fi

# 1. Tools: podman (and runc, which these machines run containers with), debootstrap.
need=()
for pair in podman:podman runc:runc debootstrap:debootstrap; do
  command -v "${pair#*:}" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "${pair#*:}" >/dev/null 2>&1 \
    || need+=("${pair%%:*}")
done
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || not_here "${need[*]} missing and no apt-get to install them"
  say "apt-get install ${need[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } \
    >/dev/null || { echo "apt-get install ${need[*]} failed" >&2; exit 1; }
fi
export PATH="$PATH:/usr/sbin:/sbin"
if [ "${FORCE:-0}" != 1 ] && "${P[@]}" image exists "$TAG" 2>/dev/null; then say "$TAG exists"; exit 0; fi

# 2. Where Debian comes from: the host's apt sources (one-line or deb822 format), not the security suite.
if [ -z "${MIRROR:-}" ]; then
  MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
           | sed -nE 's/^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)([a-z]+:[^[:space:]]+).*/\3/p' \
           | grep -v -- '-security' | head -n 1 || true)
fi
[ -n "${MIRROR:-}" ] || not_here "no Debian mirror in the apt sources (set MIRROR)"
SUITE=${SUITE:-$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")}
SUITE=${SUITE:-bookworm}

# 3. The root file system. Only Depends, no Recommends: minbase plus what a python:*-slim offers.
work=${WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/local-base-image.XXXXXX")}
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
started=$SECONDS
say "debootstrap $SUITE from $MIRROR (about 2 minutes)"
debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
  "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; echo "debootstrap failed" >&2; exit 1; }

# 4. Behave like python:*-slim: python/pip on PATH in /usr/local/bin, pip may install system-wide.
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
for name in python python3; do ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/$name"; done
for name in pip pip3; do ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/$name"; done
if [ "${HOST_CA:-1}" = 1 ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
fi
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log
version=$(chroot "$rootfs" python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')

# 5. Import: an image from the tree, with the environment python:*-slim sets.
tar -C "$rootfs" --numeric-owner -c . | "${P[@]}" import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "ENV PYTHON_VERSION=$version" \
  --change "LABEL org.opencontainers.image.description=local stand-in for python:3.12-slim: Debian $SUITE, Python $version" \
  --change 'CMD ["python3"]' \
  - "$TAG" >/dev/null
say "made $TAG (Debian $SUITE, Python $version) in $((SECONDS - started)) s"
