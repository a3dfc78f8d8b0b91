"""The Collector configs: valid YAML, only components of the contrib distribution, consistent pipelines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "otel-collector-config"
COMPONENTS = yaml.safe_load(
    (Path(__file__).parent / "testdata" / "otelcol-contrib-0.136.0-components.yaml").read_text()
)
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))
SECTIONS = ("receivers", "processors", "exporters", "extensions", "connectors")


def _type(name: str) -> str:
    return name.split("/", 1)[0]


@pytest.fixture(params=CONFIGS, ids=lambda p: p.name)
def config(request: pytest.FixtureRequest) -> dict[str, Any]:
    text = request.param.read_text()
    assert text.startswith("#") and "When to use" in text.split("\n\n", 1)[0], "a comment on when to use it first"
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def test_both_configs_exist() -> None:
    assert {p.name for p in CONFIGS} == {"collector-in-front.yaml", "collector-direct.yaml"}


def test_every_component_is_in_the_contrib_distribution(config: dict[str, Any]) -> None:
    for section in SECTIONS:
        for name in config.get(section) or {}:
            assert _type(name) in COMPONENTS[section], (
                f"{section}.{name}: not in otelcol-contrib {COMPONENTS['version']}"
            )


def test_pipelines_reference_defined_components(config: dict[str, Any]) -> None:
    service = config["service"]
    for ext in service.get("extensions", []):
        assert ext in config["extensions"], f"service.extensions: {ext} is not defined"
    used: set[tuple[str, str]] = set()
    for pname, pipe in service["pipelines"].items():
        assert _type(pname) in ("traces", "metrics", "logs"), pname
        assert pipe.get("receivers") and pipe.get("exporters"), f"{pname} needs receivers and exporters"
        for section in ("receivers", "processors", "exporters"):
            for ref in pipe.get(section, []):
                assert ref in (config.get(section) or {}), f"service.pipelines.{pname}.{section}: {ref} is not defined"
                used.add((section, ref))
        procs = pipe.get("processors", [])
        if procs:
            assert procs[0] == "memory_limiter" and procs[-1] == "batch", f"{pname}: memory_limiter first, batch last"
    for section in ("receivers", "processors", "exporters"):
        for name in config.get(section) or {}:
            assert (section, name) in used or name == "debug", f"{section}.{name} is defined but never used"


def test_storage_references_resolve(config: dict[str, Any]) -> None:
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "storage":
                    assert v in config["extensions"], f"storage {v} is not an extension"
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config.get("exporters"))


def test_in_front_load_balances_to_the_hub_and_reads_kafka_topics() -> None:
    cfg = yaml.safe_load((CONFIG_DIR / "collector-in-front.yaml").read_text())
    lb = {k: v for k, v in cfg["exporters"].items() if _type(k) == "loadbalancing"}
    assert {v["routing_key"] for v in lb.values()} == {"traceID", "service"}
    assert all(v["resolver"]["dns"]["port"] == 4317 for v in lb.values())
    topics = {v["logs"]["topic"] for k, v in cfg["receivers"].items() if _type(k) == "kafka"}
    modules = {"llm-observatory", "llm-sentinel", "llm-costops", "llm-governance", "llm-registry", "llm-policy-engine"}
    assert topics == {f"platform.events.{m}" for m in modules}
    assert cfg["service"]["pipelines"]["traces"]["exporters"] == ["loadbalancing/traces"]


def test_direct_writes_to_the_three_backends() -> None:
    cfg = yaml.safe_load((CONFIG_DIR / "collector-direct.yaml").read_text())
    ex = cfg["exporters"]
    assert ex["prometheusremotewrite"]["endpoint"].endswith("/api/v1/write")
    assert ex["otlphttp/loki"]["endpoint"].endswith("/otlp")
    assert "loki" not in COMPONENTS["exporters"]  # why otlphttp: the loki exporter left contrib
    assert "deltatocumulative" in cfg["service"]["pipelines"]["metrics"]["processors"]
