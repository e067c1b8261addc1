# llm-log-exporter as a container: a sidecar that follows a usage log in a shared volume.
#   docker build -t llm-log-exporter .        (or: podman build -t llm-log-exporter .)
#   docker run --rm -p 9464:9464 -v "$HOME/.aider:/var/log/llm:ro" \
#     -e LLM_LOG_EXPORTER_FILE=/var/log/llm/usage.jsonl llm-log-exporter
# See docs/deploy.md. The install steps below are run by tests/test_container.py.
ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
COPY . .
# Wheels of the package, its `yaml` extra and all they need: the runtime stage installs these files
# (exact versions, no index) and carries no build tools or caches.
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels ".[yaml]"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="llm-log-exporter" \
      org.opencontainers.image.description="Turn LLM usage logs (LiteLLM, aider, AI gateways) into Prometheus metrics" \
      org.opencontainers.image.licenses="Apache-2.0"
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
USER 65532:65532
WORKDIR /tmp
EXPOSE 9464
# The exporter installs SIGTERM/SIGINT handlers, so as PID 1 it stops at once with exit code 0.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["llm-log-exporter", "healthcheck"]
ENTRYPOINT ["llm-log-exporter"]
