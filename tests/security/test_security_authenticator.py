"""The authenticator (API key / JWT / mTLS / anonymous), bind safety and the config structs' key paths."""

from __future__ import annotations

import time
from pathlib import Path

import jwt as pyjwt
import msgspec
import pytest

from hubcore.config import config_error as _as_config_error
from hubcore.errors import ConfigError
from hubcore.security.apikeys import ApiKeyStore
from hubcore.security.authenticator import Authenticator, check_bind_safety, is_loopback, open_warning
from hubcore.security.config import AuditConfig, AuthConfig, JwtConfig, MtlsIdentity, OrgConfig, QuotasConfig, TlsConfig
from hubcore.security.jwt import JwtVerifier
from hubcore.security.principal import AuthError

SECRET = "a-shared-secret-of-at-least-32-chars!"


@pytest.fixture
def auth(tmp_path: Path) -> tuple[Authenticator, str]:
    cfg = AuthConfig(
        enabled=True,
        jwt=JwtConfig(issuer="https://idp", audience="hub", algorithms=["HS256"], hs256_secret=SECRET),
        orgs={"acme-corp": OrgConfig(teams={"ml": ["alice"]})},
        mtls_subjects={"collector-1": MtlsIdentity(tenant_id="acme", role="ingest")},
    ).validate()
    keys = ApiKeyStore(tmp_path)
    key = keys.create(tenant_id="acme", role="ingest").key
    return Authenticator(cfg, keys, JwtVerifier(cfg.jwt)), key  # type: ignore[arg-type]


def hs_token(**over: object) -> str:
    now = int(time.time())
    c = {"iss": "https://idp", "aud": "hub", "sub": "alice", "tenant_id": "acme", "roles": ["analytics_editor"],
         "iat": now, "exp": now + 60, **over}  # fmt: skip
    return pyjwt.encode(c, SECRET, algorithm="HS256")


def test_api_key_jwt_and_mtls(auth: tuple[Authenticator, str]) -> None:
    a, key = auth
    p = a.authenticate(f"Bearer {key}")
    assert (p.auth_method, p.tenant_id, p.roles) == ("api_key", "acme", {"ingest"})
    j = a.authenticate(f"bearer {hs_token()}")
    assert (j.auth_method, j.team, j.org) == ("jwt", "ml", "acme-corp")  # team/org from the hierarchy
    m = a.authenticate(None, client_cert_subject="collector-1")
    assert (m.auth_method, m.subject, m.roles) == ("mtls", "mtls:collector-1", {"ingest"})


@pytest.mark.parametrize(
    ("header", "cert", "code"),
    [
        (None, None, "missing_credentials"),
        ("   ", None, "missing_credentials"),
        ("Basic dXNlcjpwYXNz", None, "bad_scheme"),
        ("Bearer", None, "bad_scheme"),
        ("Bearer lah_0123456789abcdef_" + "0" * 48, None, "invalid_api_key"),
        ("Bearer lah_short", None, "invalid_api_key"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", None, "malformed_token"),
        (None, "stranger", "unknown_client_cert"),
    ],
)
def test_rejections_and_challenge(
    auth: tuple[Authenticator, str], header: str | None, cert: str | None, code: str
) -> None:
    a, _ = auth
    with pytest.raises(AuthError) as ei:
        a.authenticate(header, client_cert_subject=cert)
    assert ei.value.code == code
    challenge = ei.value.www_authenticate()
    assert challenge.startswith('Bearer realm="llm-analytics-hub"')
    assert ("error=" in challenge) is (code != "missing_credentials")


def test_expired_jwt_message(auth: tuple[Authenticator, str]) -> None:
    a, _ = auth
    with pytest.raises(AuthError) as ei:
        a.authenticate(f"Bearer {hs_token(exp=int(time.time()) - 3600)}")
    assert ei.value.code == "token_expired" and "expired" in ei.value.www_authenticate()


def test_jwt_not_configured_and_api_keys_off(tmp_path: Path) -> None:
    keys = ApiKeyStore(tmp_path)
    key = keys.create(tenant_id="acme", role="ingest").key
    a = Authenticator(AuthConfig(enabled=True), keys, None)
    with pytest.raises(AuthError) as ei:
        a.authenticate(f"Bearer {hs_token()}")
    assert ei.value.code == "jwt_not_configured"
    off = Authenticator(AuthConfig(enabled=True, api_keys=False, mtls_subjects={}), keys, None)
    with pytest.raises(AuthError, match="not accepted"):
        off.authenticate(f"Bearer {key}")


def test_auth_off_is_anonymous_platform_principal() -> None:
    a = Authenticator(AuthConfig(), None, None, default_tenant="main")
    p = a.authenticate("Bearer garbage")
    assert (p.subject, p.tenant_id, p.auth_method, p.cross_tenant) == ("anonymous", "main", "anonymous", True)
    assert "tenants:admin" in p.permissions


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("", False), ("10.0.0.5", False), ("hub.example.com", False)],
)  # fmt: skip
def test_bind_safety(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    err = check_bind_safety(host, auth_enabled=False)
    assert (err is None) is loopback
    if err:  # both ways to turn authentication on: the flag a command-line user looks for, and the config key
        assert "refusing" in err and "--auth on" in err and "service.auth.enabled: true" in err
    assert check_bind_safety(host, auth_enabled=True) is None
    warning = open_warning(host, auth_enabled=False)
    assert (warning is not None) is loopback
    if warning:
        assert "--auth on" in warning and "service.auth.enabled: true" in warning
    assert open_warning(host, auth_enabled=True) is None


class _Service(msgspec.Struct, forbid_unknown_fields=True):
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    tls: TlsConfig = msgspec.field(default_factory=TlsConfig)
    quotas: QuotasConfig = msgspec.field(default_factory=QuotasConfig)
    audit: AuditConfig = msgspec.field(default_factory=AuditConfig)


class _Root(msgspec.Struct, forbid_unknown_fields=True):
    service: _Service


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"auth": {"enabld": True}}, "service.auth.enabld"),
        ({"auth": {"jwt": {"leeway": -1}}}, "service.auth.jwt.leeway"),
        ({"tls": {"client_auth": "sometimes"}}, "service.tls.client_auth"),
        ({"quotas": {"events_per_second": 0}}, "service.quotas.events_per_second"),
        # msgspec does not report dict keys in error paths: hubcore.config drops the "[...]"
        ({"quotas": {"tenants": {"acme": {"storage_bytes": -5}}}}, "service.quotas.tenants.storage_bytes"),
        ({"audit": {"fsync": "maybe"}}, "service.audit.fsync"),
    ],
)
def test_struct_errors_name_the_yaml_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(msgspec.ValidationError) as ei:
        msgspec.convert({"service": data}, _Root, strict=False)
    assert _as_config_error(ei.value).key == key


def test_validate_methods(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        TlsConfig(enabled=True, cert_file=str(tmp_path / "missing.crt"), key_file="x").validate()
    assert ei.value.key == "service.tls.cert_file"
    (tmp_path / "c").write_text("x")
    with pytest.raises(ConfigError) as ei:
        TlsConfig(
            enabled=True, cert_file=str(tmp_path / "c"), key_file=str(tmp_path / "c"), client_auth="require"
        ).validate()
    assert ei.value.key == "service.tls.ca_file"
    with pytest.raises(ConfigError) as ei:
        QuotasConfig(events_burst=0.5).validate()
    assert ei.value.key == "service.quotas.events_burst"
    with pytest.raises(ConfigError) as ei:
        AuditConfig(directory=" ").validate()
    assert ei.value.key == "service.audit.directory"
    assert TlsConfig().validate() == TlsConfig() and QuotasConfig().validate() == QuotasConfig()
