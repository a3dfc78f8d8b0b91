"""``processors.alerting`` config: YAML shape, errors naming the key, doctests, the factory."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import msgspec
import pytest
import yaml

from exporters.alertmanager import AlertmanagerExporter, AlertmanagerExporterConfig
from hubcore.errors import ConfigError
from hubcore.storage.embedded import EmbeddedStore
from processors.alerting import AlertingConfig, AlertingService, RuleError, parse_rule
from processors.alerting.factory import create_service, default_config
from processors.alerting.rules import BUILTIN_RULE_SPECS, parse_duration
from tests.alerting.conftest import FakeAlertmanager

MODULES = ["processors.alerting.rules", "processors.alerting.config", "processors.alerting.evaluator",
           "processors.alerting.webhook"]  # fmt: skip

YAML = """
interval: 15s
repeat_suppress: 5m
escalate_after: 0
external_url: http://hub.example:8080
rules:
  - name: GPT4oSlow
    tenant_id: acme
    condition: {type: threshold, metric: gen_ai.client.operation.duration, filters: {model: [gpt-4o, gpt-4o-mini]},
                aggregation: p95, window: 5m, op: ">", value: 2000}
    for: 5m
    labels: {team: search}
"""


@pytest.mark.parametrize("module", MODULES)
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0


def test_yaml_config_converts_and_validates() -> None:
    cfg = msgspec.convert(yaml.safe_load(YAML), AlertingConfig, strict=False).validate()
    assert (cfg.interval_s, cfg.repeat_suppress_s, cfg.escalate_after_s) == (15.0, 300.0, 0.0)
    assert default_config().interval_s == 30.0


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"interval": "soon"}, "processors.alerting.interval"),
        ({"interval": 0}, "processors.alerting.interval"),
        ({"rules": [{"name": "X", "condition": {"type": "anomaly", "window": "-1m"}}]},
         "processors.alerting.rules.0.condition.window"),
        ({"rules": [{"name": "X"}]}, "processors.alerting.rules.0.condition"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(change: dict[str, object], key: str) -> None:
    data = {**yaml.safe_load(YAML), **change}
    with pytest.raises(ConfigError) as err:
        msgspec.convert(data, AlertingConfig, strict=False).validate()
    assert str(err.value).startswith(key)


def test_durations() -> None:
    assert [parse_duration(v, "x") for v in ("500ms", "30s", "5m", "2h", "1d", "1w", 90, 1.5)] == [
        0.5, 30.0, 300.0, 7200.0, 86400.0, 604800.0, 90.0, 1.5]  # fmt: skip
    for bad in ("", "5 minutes", "2w", True, None, [], "8d", 10**400, -1, "0s"):
        with pytest.raises(RuleError):
            parse_duration(bad, "x")


def test_builtin_rules_parse_and_are_named_after_runbooks() -> None:
    repo = Path(__file__).resolve().parents[2]
    for spec in BUILTIN_RULE_SPECS:
        rule = parse_rule(spec)
        assert (repo / rule.annotations["runbook_url"]).is_file(), rule.annotations["runbook_url"]


def test_factory_and_lifecycle_is_idempotent(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, wal_fsync=False)
    never = create_service(AlertingConfig(), store)
    never.shutdown()  # safe without start
    never.shutdown()
    store.start()
    try:
        am = AlertmanagerExporterConfig(endpoint="http://127.0.0.1:9", dead_letter_directory=str(tmp_path / "dlq"))
        client = AlertmanagerExporter(am)
        svc = create_service(AlertingConfig(interval=0.05), store, None, client)
        assert isinstance(svc, AlertingService) and svc.alertmanager is client
        svc.start()
        svc.start()
        assert svc.list_alerts("acme") == []
        svc.shutdown(2.0)
        svc.shutdown(2.0)
        svc.start()  # a shut-down service stays down
        assert svc._thread is not None and not svc._thread.is_alive()
        assert client._closed  # managed: shut down with the service
        fake = FakeAlertmanager()
        unmanaged = create_service(AlertingConfig(enabled=False), store, None, fake, manage_client=False)
        unmanaged.start()
        unmanaged.shutdown()
        assert (fake.started, fake.stopped) == (0, 0)
    finally:
        store.shutdown()


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 10**400, "2000", True])
def test_a_rule_value_must_be_a_finite_number(value: object) -> None:
    # JSON's 1e400 decodes as infinity: the rule was created, and stored with a null value
    spec = {"name": "X", "condition": {"type": "threshold", "metric": "m", "aggregation": "p95", "window": "5m",
                                       "op": ">", "value": value}}  # fmt: skip
    with pytest.raises(RuleError) as err:
        parse_rule(spec)
    assert err.value.field == "condition.value"
