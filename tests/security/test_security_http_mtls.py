"""mTLS identifies callers over HTTP too: the API, the WebSocket and OTLP/HTTP map a verified client
certificate's CN through ``service.auth.mtls_subjects``, as gRPC does (the ASGI TLS extension)."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from hubcore.security.tls import client_ssl_context
from tests.helpers.events import make_event
from tests.helpers.hub import RunningHub, hub_config, running_hub
from tests.security.certs import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def hub(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    cfg = hub_config(
        tmp_path_factory.mktemp("hub"), grpc=False,
        service__tls={"enabled": True, "cert_file": str(pki.server_cert), "key_file": str(pki.server_key),
                      "ca_file": str(pki.ca), "client_auth": "optional"},
        service__auth={"enabled": True, "mtls_subjects": {"collector-1": {"tenant_id": "acme", "role": "tenant_admin"}}},
    )  # fmt: skip
    with running_hub(Path(), cfg) as h:
        yield h


def _client(pki: Pki, cert: Path | None, key: Path | None) -> httpx.Client:
    ctx = client_ssl_context(str(pki.ca), cert_file=str(cert) if cert else None, key_file=str(key) if key else None)
    return httpx.Client(verify=ctx, timeout=10)


def _url(hub: RunningHub, name: str) -> str:
    return f"https://localhost:{hub.service.bound[name]}"


def test_api_maps_the_certificate_cn_to_its_identity(hub: RunningHub, pki: Pki) -> None:
    with _client(pki, pki.client_cert, pki.client_key) as c:
        r = c.post(_url(hub, "api") + "/api/v1/events", json=[make_event("cost")])
        assert r.status_code == 202, r.text
        hub.flush()
        r = c.get(_url(hub, "api") + "/api/v1/events", params={"limit": 5})
        assert r.status_code == 200, r.text
        assert [e["tenant_id"] for e in r.json()["events"]] == ["acme"]  # the mapped tenant, not the default
    assert hub.sql("SELECT DISTINCT tenant_id FROM events") == [("acme",)]


def test_unmapped_or_missing_certificate_is_refused(hub: RunningHub, pki: Pki) -> None:
    with _client(pki, pki.stranger_cert, pki.stranger_key) as c:
        r = c.get(_url(hub, "api") + "/api/v1/events")
        assert r.status_code == 401 and "unmapped-client" in r.text
    with _client(pki, None, None) as c:  # client_auth optional: the connection opens, no identity
        r = c.get(_url(hub, "api") + "/api/v1/events")
        assert r.status_code == 401
    # a header cannot stand in for the handshake
    with _client(pki, None, None) as c:
        r = c.get(_url(hub, "api") + "/api/v1/events", headers={"ssl-client-subject": "CN=collector-1"})
        assert r.status_code == 401


def test_certificate_from_another_ca_fails_the_handshake(hub: RunningHub, pki: Pki) -> None:
    with _client(pki, pki.rogue_cert, pki.rogue_key) as c, pytest.raises(httpx.HTTPError):
        c.get(_url(hub, "api") + "/healthz")


def test_otlp_http_and_websocket_use_the_certificate(hub: RunningHub, pki: Pki) -> None:
    now_ns = str(time.time_ns())  # a fixed old date would fall to retention (30 days) in a slow run
    body = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": now_ns,
                                                            "body": {"stringValue": "hello over mTLS"}}]}]}]}  # fmt: skip
    with _client(pki, pki.client_cert, pki.client_key) as c:
        r = c.post(_url(hub, "otlp_http") + "/v1/logs", json=body)
        assert r.status_code == 200, r.text
    with _client(pki, pki.stranger_cert, pki.stranger_key) as c:
        assert c.post(_url(hub, "otlp_http") + "/v1/logs", json=body).status_code == 401
    ctx = client_ssl_context(str(pki.ca), cert_file=str(pki.client_cert), key_file=str(pki.client_key))
    ws_url = _url(hub, "api").replace("https://", "wss://") + "/ws/events"
    with connect(ws_url, ssl=ctx) as ws:
        ws.send(json.dumps([make_event("policy")]))
        assert json.loads(ws.recv(10))["accepted"] == 1
    hub.flush()
    assert hub.sql("SELECT tenant_id, count(*) FROM events GROUP BY 1") == [("acme", 2)]
    assert hub.sql("SELECT DISTINCT tenant_id FROM logs WHERE body = 'hello over mTLS'") == [("acme",)]


def test_tls_extension_without_client_certificate(pki: Pki) -> None:
    from hubcore.security.asgi_tls import client_cert_subject, tls_extension

    assert tls_extension(None) is None
    assert client_cert_subject({"extensions": {"tls": {"client_cert_name": "not a DN"}}}) is None
    assert client_cert_subject({"extensions": {"tls": {"client_cert_name": "O=Acme"}}}) is None
    assert ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(pki.client_cert.read_text()))
