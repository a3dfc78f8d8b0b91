"""Configuration: defaults need no file; errors name the YAML key; ${env:VAR} substitution."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubcore.config import ConfigError, HubConfig, expand_env, load_config, load_config_text

GOOD = """
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "0.0.0.0:14317"}
      http: {enabled: false}
processors:
  native_events: {max_age: 86400, exchange_rates: {USD: 1, EUR: 1.1}}
exporters:
  embedded: {data_dir: "${env:HUB_TEST_DIR:-/tmp/x}", retention_days: 90}
service:
  api: {port: 9999}
"""


def test_defaults_need_no_file() -> None:
    cfg = load_config(None)
    assert cfg.service.api.port == 8080
    assert cfg.receivers.otlp.protocols.grpc.endpoint == "127.0.0.1:4317"
    assert cfg.receivers.otlp.protocols.http.endpoint == "127.0.0.1:4318"
    assert cfg.exporters.embedded.retention_days == 30
    assert cfg.service.event_loop == "auto"


def test_a_full_file_with_env_substitution() -> None:
    cfg = load_config_text(GOOD, env={"HUB_TEST_DIR": "/data/hub"})
    assert cfg.exporters.embedded.data_dir == "/data/hub"
    assert cfg.receivers.otlp.protocols.grpc.endpoint == "0.0.0.0:14317"
    assert cfg.receivers.otlp.protocols.http.enabled is False
    assert cfg.receivers.otlp.protocols.http.endpoint == "127.0.0.1:4318"
    assert cfg.processors.native_events.exchange_rates["EUR"] == 1.1
    assert load_config_text(GOOD, env={}).exporters.embedded.data_dir == "/tmp/x"


BAD = [
    ("service: {api: {port: 'x'}}", "service.api.port"),
    ("service: {api: {port: 70000}}", "service.api.port"),
    ("service: {event_loop: trio}", "service.event_loop"),
    ("service: {event_loop: 1}", "service.event_loop"),
    ("receivers: {kafka: {}}", "receivers.kafka"),
    ("exporters: {embedded: {retention_days: 0}}", "exporters.embedded.retention_days"),
    ("exporters: {embedded: {memory_limit: lots}}", "exporters.embedded.memory_limit"),
    ("exporters: {embedded: {memory_limit: '100'}}", "exporters.embedded.memory_limit"),
    ("exporters: {embedded: {memory_limit: 150%}}", "exporters.embedded.memory_limit"),
    ("exporters: {embedded: {memory_limit: 10kb}}", "exporters.embedded.memory_limit"),
    ("processors: {native_events: {exchange_rates: {EUR: -1}}}", "processors.native_events.exchange_rates"),
    ("receivers: {otlp: {protocols: {grpc: {endpoint: 'nohost'}}}}", "receivers.otlp.protocols.grpc.endpoint"),
    ("service: {pipelines: {p: {receivers: [x], exporters: [embedded]}}}", "service.pipelines.p.receivers"),
    ("service: {pipelines: {p: {receivers: [otlp], exporters: [loki]}}}", "service.pipelines.p.exporters"),
    ("service: {pipelines: {p: {receivers: [otlp], exporters: []}}}", "service.pipelines.p"),
    ("exporters: {embedded: {data_dir: '${env:HUB_UNSET_VAR}'}}", "exporters.embedded.data_dir"),
    ("- a list", ""),
    ("receivers: [unclosed", ""),
]


@pytest.mark.parametrize(("text", "key"), BAD)
def test_errors_name_the_yaml_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, env={})
    assert info.value.key == key
    if key:
        assert str(info.value).startswith(key + ":")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_a_directory_is_not_called_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_a_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "hub.yaml"
    cfg.write_bytes(b"service: {api: {port: 8080}}\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"is not UTF-8 text \(byte 34\); save it as UTF-8"):
        load_config(cfg)


@pytest.mark.parametrize("value", ["4GB", "512MiB", "1.5 GB", "80%", "100%", "2gigabytes", "1TiB"])
def test_memory_limit_takes_duckdb_sizes(value: str) -> None:
    import duckdb

    cfg = load_config_text(f"exporters: {{embedded: {{memory_limit: '{value}'}}}}")
    assert cfg.exporters.embedded.memory_limit == value
    duckdb.connect(config={"memory_limit": value}).close()  # and DuckDB takes it too


def test_config_struct_round_trips() -> None:
    assert isinstance(HubConfig().validate(), HubConfig)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("exporters: {victoriametrics: {endpoint: 'http://vm:8428', flush_interval: -1}}",
         "exporters.victoriametrics.flush_interval"),
        ("exporters: {loki: {endpoint: 'http://loki:3100', bogus: 1}}", "exporters.loki.bogus"),
        ("exporters: {tempo: {endpoint: 'ftp://x'}}", "exporters.tempo.endpoint"),
        ("processors: {correlation: {flush_interval: 0}}", "processors.correlation.flush_interval"),
        ("processors: {analytics: {schedulers: {}}}", "processors.analytics.schedulers"),
    ],
)  # fmt: skip
def test_component_sections_name_their_keys(text: str, key: str) -> None:
    from hub.components import validate_components

    with pytest.raises(ConfigError) as info:
        validate_components(load_config_text(text, env={}))
    assert info.value.key == key, str(info.value)


# ${env:...} is expanded after parsing, in string values only, as the Collector's confmap does.


def test_a_commented_out_env_reference_is_ignored() -> None:
    text = "service:\n  api: {port: 8080}   # ${env:HUB_UNSET_VAR}\n  # hs256_secret: ${env:HUB_JWT_SECRET}\n"
    assert load_config_text(text, env={}).service.api.port == 8080


def test_a_whole_value_reference_is_typed_as_yaml_types_it() -> None:
    text = "service: {api: {port: '${env:PORT}'}}\nreceivers: {otlp: {protocols: {http: {enabled: ${env:ON}}}}}"
    cfg = load_config_text(text, env={"PORT": "9000", "ON": "false"})
    assert cfg.service.api.port == 9000
    assert cfg.receivers.otlp.protocols.http.enabled is False
    assert expand_env({"a": "${env:N}", "b": "${env:F}", "c": "${env:S}"}, {"N": "7", "F": "1.5", "S": "x"}).data == {
        "a": 7,
        "b": 1.5,
        "c": "x",
    }


def test_a_typed_value_stays_text_in_a_string_field() -> None:
    secret = "1234567890" * 4  # YAML would read it as an int; the field is a str
    text = """
service:
  auth:
    enabled: true
    jwt:
      issuer: i
      audience: a
      algorithms: [HS256]
      hs256_secret: ${env:S}
"""
    cfg = load_config_text(text, env={"S": secret})
    assert cfg.service.auth.jwt is not None and cfg.service.auth.jwt.hs256_secret == secret


def test_an_embedded_reference_interpolates_as_text() -> None:
    text = "receivers: {otlp: {protocols: {grpc: {endpoint: '${env:H}:${env:P}'}}}}"
    cfg = load_config_text(text, env={"H": "0.0.0.0", "P": "14317"})
    assert cfg.receivers.otlp.protocols.grpc.endpoint == "0.0.0.0:14317"


@pytest.mark.parametrize("value", ["/data/a # not a comment", "/data/b: c", "/data/c\nd: e", " /data/d ", "{x: 1}"])
def test_a_value_is_kept_verbatim(value: str) -> None:
    text = "exporters:\n  embedded:\n    data_dir: ${env:D}\n    retention_days: 9\n"
    cfg = load_config_text(text, env={"D": value})
    assert cfg.exporters.embedded.data_dir == value
    assert cfg.exporters.embedded.retention_days == 9  # the document's structure is unchanged


def test_an_unset_variable_names_the_key_path() -> None:
    text = "service:\n  auth:\n    jwt:\n      hs256_secret: ${env:HUB_JWT_SECRET}\n"
    with pytest.raises(ConfigError) as info:
        load_config_text(text, env={})
    assert info.value.key == "service.auth.jwt.hs256_secret"
    assert str(info.value) == (
        "service.auth.jwt.hs256_secret: environment variable HUB_JWT_SECRET is not set"
        " (write ${env:HUB_JWT_SECRET:-default})"
    )
    with pytest.raises(ConfigError) as info:
        load_config_text("service: {pipelines: {p: {receivers: [otlp, '${env:NOPE}'], exporters: [embedded]}}}", env={})
    assert info.value.key == "service.pipelines.p.receivers.1"


def test_the_default_syntax() -> None:
    text = "service: {api: {port: '${env:PORT:-8181}', host: '${env:HOST:-}'}}"
    assert load_config_text(text, env={}).service.api.port == 8181
    assert load_config_text(text, env={"PORT": "8282"}).service.api.port == 8282
    assert expand_env({"a": "${env:X:-}", "b": "p-${env:X:-d}-s"}, {}).data == {"a": "", "b": "p-d-s"}


def test_dollar_dollar_is_a_literal_dollar() -> None:
    data = {"a": "$${env:HOME}", "b": "pa$$word", "c": "$5 and $${x}", "d": "$$"}
    assert expand_env(data, {"HOME": "/h"}).data == {"a": "${env:HOME}", "b": "pa$word", "c": "$5 and ${x}", "d": "$"}


def test_keys_are_not_expanded() -> None:
    assert expand_env({"${env:K}": "v"}, {}).data == {"${env:K}": "v"}


def test_an_unquoted_reference_in_flow_style_still_parses() -> None:
    text = "exporters: {embedded: {data_dir: ${env:D:-./data}, retention_days: ${env:R}}}"
    cfg = load_config_text(text, env={"R": "12"})
    assert (cfg.exporters.embedded.data_dir, cfg.exporters.embedded.retention_days) == ("./data", 12)
