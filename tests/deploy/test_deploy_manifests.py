"""deploy/: compose and Kubernetes files parse, and agree with each other and with the repository.

Docker and Kubernetes are not run here; these checks are what can be verified statically.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
K8S_FILES = sorted(f for f in (DEPLOY / "k8s").glob("*.yaml") if f.name != "kustomization.yaml")
K8S = [doc for f in K8S_FILES for doc in yaml.safe_load_all(f.read_text()) if doc]
REQUIRED_SERVICES = {"otel-collector", "hub", "victoriametrics", "vmalert", "alertmanager", "loki", "tempo", "grafana"}


def _pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest") and re.search(r"\d", tag) is not None


def _container_ports(service: dict[str, Any]) -> set[int]:
    ports = {int(p) for p in service.get("expose", [])}
    for p in service.get("ports", []):
        ports.add(int(str(p).split(":")[-1].split("/")[0]))
    return ports


def _obj(kind: str, name: str) -> dict[str, Any]:
    for doc in K8S:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind}/{name} in deploy/k8s")


# -- docker compose ---------------------------------------------------------------------------------
def test_compose_has_the_whole_stack_with_pinned_images() -> None:
    services = COMPOSE["services"]
    assert set(services) >= REQUIRED_SERVICES
    for name, svc in services.items():
        assert _pinned(svc["image"]), f"{name}: image {svc['image']!r} must have a pinned version tag"
    assert services["hub"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / services["hub"]["build"]["context"] / "deploy" / "Dockerfile").is_file()


def test_compose_mounts_exist_in_the_repository() -> None:
    named = set(COMPOSE.get("volumes") or {})
    for name, svc in COMPOSE["services"].items():
        for vol in svc.get("volumes", []):
            source = vol.split(":", 1)[0]
            if source in named:
                continue
            assert source.startswith("."), f"{name}: {source} is neither a named volume nor a repo path"
            assert (DEPLOY / source).exists(), f"{name}: mounted path {source} does not exist"


def test_compose_mounts_what_each_service_needs() -> None:
    s = COMPOSE["services"]
    mounts = {n: {v.split(":")[1]: v.split(":")[0] for v in svc.get("volumes", [])} for n, svc in s.items()}
    assert mounts["grafana"]["/etc/grafana/provisioning"] == "../grafana/provisioning"
    provider = yaml.safe_load(next((ROOT / "grafana/provisioning/dashboards").glob("*.y*ml")).read_text())
    assert mounts["grafana"][provider["providers"][0]["options"]["path"]] == "../grafana/dashboards"
    assert mounts["alertmanager"]["/etc/alertmanager/alertmanager.yml"] == "../rules/alertmanager/alertmanager.yml"
    am = (ROOT / "rules/alertmanager/alertmanager.yml").read_text()
    for secret in re.findall(r"/etc/alertmanager/secrets/(\w+)", am):
        assert (DEPLOY / "secrets/alertmanager" / secret).is_file(), f"secret file {secret} missing"
    assert mounts["vmalert"]["/etc/vmalert/rules"] == "../rules"
    rule_globs = [a.split("=", 1)[1] for a in s["vmalert"]["command"] if a.startswith("-rule=")]
    for g in rule_globs:
        assert list((ROOT / "rules").glob(g.removeprefix("/etc/vmalert/rules/"))), g
    assert (
        mounts["otel-collector"]["/etc/otelcol-contrib/config.yaml"]
        == "../otel-collector-config/collector-in-front.yaml"
    )
    assert mounts["hub"]["/etc/hub/hub.yaml"] == "./hub/hub-stack.yaml"


def test_compose_urls_and_ports_agree() -> None:
    s = COMPOSE["services"]
    ports = {n: _container_ports(svc) for n, svc in s.items()}

    def check_url(url: str, where: str) -> None:
        u = urlparse(url if "://" in url else f"grpc://{url}")
        assert u.hostname in s, f"{where}: {url} names no compose service"
        assert u.port in ports[u.hostname], f"{where}: {u.hostname} does not listen on {u.port}"

    hub_cfg = yaml.safe_load((DEPLOY / "hub/hub-stack.yaml").read_text())
    for name, exp in hub_cfg["exporters"].items():
        if "endpoint" in exp:
            check_url(exp["endpoint"], f"hub-stack.yaml exporters.{name}")
    assert {8080, 4317, 4318} <= ports["hub"]
    assert hub_cfg["service"]["api"]["port"] == 8080
    for proto in ("grpc", "http"):
        assert int(hub_cfg["receivers"]["otlp"]["protocols"][proto]["endpoint"].rsplit(":", 1)[1]) in ports["hub"]
    for arg in s["vmalert"]["command"]:
        if arg.startswith(("-datasource.url", "-notifier.url", "-remoteWrite.url", "-remoteRead.url")):
            check_url(arg.split("=", 1)[1], f"vmalert {arg}")
    assert s["otel-collector"]["environment"]["HUB_HEADLESS_SERVICE"] == "hub"
    datasources = yaml.safe_load((ROOT / "grafana/provisioning/datasources/datasources.yaml").read_text())
    for ds in datasources["datasources"]:
        check_url(ds["url"], f"grafana datasource {ds['uid']}")
    loki = yaml.safe_load((DEPLOY / "loki/loki.yaml").read_text())
    assert loki["server"]["http_listen_port"] in ports["loki"]
    check_url(loki["ruler"]["alertmanager_url"], "loki ruler")
    tempo = yaml.safe_load((DEPLOY / "tempo/tempo.yaml").read_text())
    assert tempo["server"]["http_listen_port"] in ports["tempo"]
    for proto in tempo["distributor"]["receivers"]["otlp"]["protocols"].values():
        assert int(proto["endpoint"].rsplit(":", 1)[1]) in ports["tempo"]


# -- Kubernetes ---------------------------------------------------------------------------------------
def test_every_manifest_is_a_named_object_in_the_namespace() -> None:
    assert K8S
    for doc in K8S:
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), doc
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "llm-hub", doc["metadata"]["name"]
    kustomization = yaml.safe_load((DEPLOY / "k8s/kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {f.name for f in K8S_FILES}


def _containers() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for doc in K8S:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        out += [(doc["metadata"]["name"], c) for c in spec.get("containers", [])]
    return out


def test_images_are_pinned() -> None:
    for name, c in _containers():
        assert _pinned(c["image"]), f"{name}: image {c['image']!r} must have a pinned version tag"


def test_hub_deployment_probes_ports_and_config() -> None:
    dep = _obj("Deployment", "llm-analytics-hub")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    named = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert named == {"http": 8080, "otlp-grpc": 4317, "otlp-http": 4318}
    resolve = lambda port: named.get(port, port)  # noqa: E731
    assert (
        c["livenessProbe"]["httpGet"]["path"] == "/healthz" and resolve(c["livenessProbe"]["httpGet"]["port"]) == 8080
    )
    assert (
        c["readinessProbe"]["httpGet"]["path"] == "/readyz" and resolve(c["readinessProbe"]["httpGet"]["port"]) == 8080
    )
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    config_path = c["args"][c["args"].index("--config") + 1]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    cm_name = volumes["config"]["configMap"]["name"]
    cm = _obj("ConfigMap", cm_name)
    key = Path(config_path).name
    assert config_path == f"{mounts['config']}/{key}" and key in cm["data"]
    hub_cfg = yaml.safe_load(cm["data"][key])
    assert hub_cfg["service"]["api"]["port"] == 8080
    assert hub_cfg["exporters"]["embedded"]["data_dir"].startswith(mounts["data"])
    for proto, port in (("grpc", 4317), ("http", 4318)):
        assert hub_cfg["receivers"]["otlp"]["protocols"][proto]["endpoint"].endswith(f":{port}")
    vm_url = urlparse(hub_cfg["exporters"]["victoriametrics"]["endpoint"])
    vminsert = _obj("Service", vm_url.hostname.split(".")[0])
    assert vm_url.port in {p["port"] for p in vminsert["spec"]["ports"]}
    assert hub_cfg["exporters"]["victoriametrics"]["cluster"]["enabled"] is True


def test_services_hpa_and_pdb_select_the_hub() -> None:
    dep = _obj("Deployment", "llm-analytics-hub")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    port_names = {p["name"] for p in c["ports"]}
    svc = _obj("Service", "llm-analytics-hub")
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert {p["port"] for p in svc["spec"]["ports"]} == {8080, 4317, 4318}
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= port_names
    headless = _obj("Service", "llm-analytics-hub-headless")
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["selector"].items() <= pod_labels.items()
    hpa = _obj("HorizontalPodAutoscaler", "llm-analytics-hub")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llm-analytics-hub"}
    metrics = hpa["spec"]["metrics"]
    assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in metrics)
    assert any(m["type"] == "Pods" and m["pods"]["metric"]["name"] == "hub_queue_depth" for m in metrics)
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = _obj("PodDisruptionBudget", "llm-analytics-hub")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_victoriametrics_cluster_is_wired() -> None:
    storage = _obj("StatefulSet", "vmstorage")
    replicas = storage["spec"]["replicas"]
    storage_ports = {
        p["name"]: p["containerPort"] for p in storage["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    for name, port_name in (("vminsert", "vminsert"), ("vmselect", "vmselect")):
        dep = _obj("Deployment", name)
        args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        nodes = [a.split("=", 1)[1] for a in args if a.startswith("-storageNode=")]
        assert len(nodes) == replicas
        for i, node in enumerate(nodes):
            host, port = node.rsplit(":", 1)
            assert host.startswith(f"vmstorage-{i}.vmstorage.") and int(port) == storage_ports[port_name]
        svc = _obj("Service", name)
        assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("path", ["docker-compose.yaml", "hub/hub-stack.yaml", "loki/loki.yaml", "tempo/tempo.yaml"])
def test_files_parse(path: str) -> None:
    assert isinstance(yaml.safe_load((DEPLOY / path).read_text()), dict)


def test_readme_says_they_were_not_started() -> None:
    assert "Not started here" in (DEPLOY / "README.md").read_text()


def test_hub_startup_probe_outlasts_the_startup_replay() -> None:
    # it allowed 120 s while the startup waits up to 300 s for the write-ahead log replay: a crash loop
    from hub.service import STARTUP_REPLAY_TIMEOUT

    dep = _obj("Deployment", "llm-analytics-hub")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    probe = c["startupProbe"]
    allowed = probe.get("initialDelaySeconds", 0) + probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)
    assert allowed >= STARTUP_REPLAY_TIMEOUT + 60
