# llm-log-exporter as a container: a sidecar that follows a usage log in a shared volume.
#   docker build -t llm-log-exporter .        podman build --format docker -t llm-log-exporter .
#   docker run --rm -p 9464:9464 -v "$HOME/.aider:/var/log/llm:ro" llm-log-exporter
# (podman's default OCI format would drop the HEALTHCHECK: keep --format docker.) See docs/deploy.md.
#
# Build arguments, all optional:
#   PYTHON_IMAGE   the base of both stages; pin it by digest for repeatable builds, e.g.
#                  --build-arg PYTHON_IMAGE=python:3.12-slim@sha256:<digest of the image you tested>
#   PIP_INDEX_URL  the package index the builder stage downloads from (a private mirror); it stays in the
#                  builder stage, not in the image or its history
#   VERSION, REVISION, CREATED, SOURCE, DOCUMENTATION   OCI labels; scripts/container-smoke.sh and the build
#                  command in docs/deploy.md fill them in (package version, git commit, RFC 3339 time, URLs)
# The RUN steps are also executed by tests/test_container.py; the image itself is built and run by
# tests/test_container_engine.py (scripts/container-smoke.sh).
ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS builder
ARG PIP_INDEX_URL=
WORKDIR /src
COPY . .
# Wheels of the package, its `yaml` extra and all they need: the runtime stage installs these files
# (exact versions, no index) and carries no build tools or caches.
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels ".[yaml]"

FROM ${PYTHON_IMAGE}
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index /wheels/*.whl
# Sidecar defaults: listen on every interface, follow the file in the shared volume. Environment
# variables beat a --config file: set LLM_LOG_EXPORTER_FILE (space-separated) or --file to change it.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LLM_LOG_EXPORTER_HOST=0.0.0.0 \
    LLM_LOG_EXPORTER_PORT=9464 \
    LLM_LOG_EXPORTER_FILE=/var/log/llm/usage.jsonl
# A fixed non-root UID (the "nonroot" UID of distroless images), numeric so runAsNonRoot can check it.
# Nothing is written at run time, so any UID works too (OpenShift's arbitrary UIDs, `--user`).
USER 65532:65532
WORKDIR /tmp
EXPOSE 9464
# The exporter installs SIGTERM/SIGINT handlers, so as PID 1 it stops with exit code 0 (at once, or
# after --shutdown-delay).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["llm-log-exporter", "healthcheck"]
ENTRYPOINT ["llm-log-exporter"]
# Labels last, so a new commit or build time does not invalidate the cached layers above.
ARG VERSION=
ARG REVISION=
ARG CREATED=
ARG SOURCE=
ARG DOCUMENTATION=
LABEL org.opencontainers.image.title="llm-log-exporter" \
      org.opencontainers.image.description="Turn LLM usage logs (LiteLLM, aider, AI gateways) into Prometheus metrics" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.documentation="${DOCUMENTATION}"
