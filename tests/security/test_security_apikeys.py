"""API keys: lifecycle, expiry, revocation through the cache, hashing; the ``hub keys`` CLI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hub.keys_cli import main as keys_main
from hub.keys_cli import parse_duration
from hubcore.security.apikeys import ApiKeyStore, ApiKeyStoreError, parse_key


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_lifecycle_create_verify_revoke(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path)
    created = store.create(tenant_id="acme", role="analytics_editor", team="ml", description="ci")
    key_id = created.info.key_id
    assert created.key.startswith(f"lah_{key_id}_") and parse_key(created.key) is not None
    p = store.verify(created.key)
    assert p is not None
    assert (p.subject, p.tenant_id, p.team, p.auth_method, p.key_id) == (
        f"apikey:{key_id}",
        "acme",
        "ml",
        "api_key",
        key_id,
    )
    assert "budgets:write" in p.permissions and not p.cross_tenant
    assert store.verify(created.key[:-1] + ("0" if created.key[-1] != "0" else "1")) is None  # wrong secret
    assert store.verify("lah_nope") is None and store.verify("Bearer x") is None
    assert [k.key_id for k in store.list(tenant_id="acme")] == [key_id]
    assert store.list(tenant_id="other") == []
    assert store.revoke(key_id) is True
    assert store.verify(created.key) is None
    assert store.revoke(key_id) is False
    assert store.get(key_id).revoked_at is not None  # type: ignore[union-attr]


def test_secret_is_stored_hashed_only(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path)
    created = store.create(tenant_id="acme", role="ingest")
    _, secret = parse_key(created.key)  # type: ignore[misc]
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert secret.encode() not in raw
    row = sqlite3.connect(tmp_path / "auth.sqlite").execute("SELECT * FROM api_keys").fetchone()
    assert secret not in [str(v) for v in row]
    assert "secret" not in repr(created.info)


def test_expiry(tmp_path: Path) -> None:
    clock = Clock()
    store = ApiKeyStore(tmp_path, clock=clock)
    created = store.create(tenant_id="acme", role="ingest", expires_in=60)
    assert store.verify(created.key) is not None
    clock.now += 61
    assert store.verify(created.key) is None
    with pytest.raises(ValueError, match="unknown role"):
        store.create(tenant_id="acme", role="root")
    for lifetime in (0, 1e-300, 0.999, float("nan"), 10 * 365 * 86_400 + 1):  # at birth already expired, or a typo
        with pytest.raises(ValueError, match="expires_in must be between 1 and"):
            store.create(tenant_id="acme", role="ingest", expires_in=lifetime)
    assert store.create(tenant_id="acme", role="ingest", expires_in=1).info.expires_at == clock.now + 1
    for bad in ("", "a b", "-x", "x" * 129):
        with pytest.raises(ValueError, match="bad tenant"):
            store.create(tenant_id=bad, role="ingest")


def test_cache_respects_revocation_by_another_process_within_ttl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hubcore.security.apikeys as mod

    mono = [100.0]
    monkeypatch.setattr(mod.time, "monotonic", lambda: mono[0])
    hub = ApiKeyStore(tmp_path, cache_seconds=5)
    cli = ApiKeyStore(tmp_path, cache_seconds=0)  # e.g. `hub keys revoke` in another process
    created = cli.create(tenant_id="acme", role="ingest")
    assert hub.verify(created.key) is not None
    cli.revoke(created.info.key_id)
    mono[0] += 2
    assert hub.verify(created.key) is not None  # still cached (within the TTL)
    mono[0] += 4
    assert hub.verify(created.key) is None  # TTL passed: revocation seen


def test_parse_duration() -> None:
    assert parse_duration("30d") == 30 * 86400
    assert parse_duration("90m") == 5400
    for bad in ("30", "d", "-1d", "0h", "3x"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_keys_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path)
    assert keys_main(["create", "--data-dir", d, "--tenant", "acme", "--role", "ingest", "--expires-in", "30d",
                      "--description", "observatory"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    key = lines[-1]
    assert "will not be shown again" in lines[-2]
    principal = ApiKeyStore(tmp_path).verify(key)
    assert principal is not None and principal.tenant_id == "acme"
    key_id = principal.key_id
    assert keys_main(["list", "--data-dir", d]) == 0
    out = capsys.readouterr().out
    assert key_id in out and "observatory" in out and "active" in out and parse_key(key)[1] not in out  # type: ignore[index]
    assert keys_main(["list", "--data-dir", d, "--tenant", "other", "--json"]) == 0
    assert capsys.readouterr().out == ""
    assert keys_main(["revoke", "--data-dir", d, str(key_id)]) == 0
    assert ApiKeyStore(tmp_path).verify(key) is None
    assert keys_main(["revoke", "--data-dir", d, str(key_id)]) == 1
    assert keys_main(["list", "--data-dir", d, "--json"]) == 0
    assert '"status": "revoked"' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "root"], "unknown role"),
        (["--role", "ingest", "--expires-in", "soon"], "bad duration"),
    ],
)
def test_keys_cli_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert keys_main(["create", "--data-dir", str(tmp_path), "--tenant", "acme", *args]) == 2
    assert message in capsys.readouterr().err


def test_keys_cli_missing_data_dir_and_custom_roles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert keys_main(["list", "--data-dir", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    cfg = tmp_path / "hub.yaml"
    cfg.write_text(
        "service:\n  auth:\n    roles:\n      finops: {extends: analytics_viewer, permissions: [budgets:write]}\n"
    )
    assert (
        keys_main(["create", "--data-dir", str(tmp_path), "--config", str(cfg), "--tenant", "a", "--role", "finops"])
        == 0
    )
    key = capsys.readouterr().out.strip().splitlines()[-1]
    from hubcore.security.config import AuthConfig, CustomRoleConfig
    from hubcore.security.rbac import RoleRegistry

    reg = RoleRegistry.from_config(AuthConfig(roles={"finops": CustomRoleConfig(extends="analytics_viewer",
                                                                               permissions=["budgets:write"])}).roles)  # fmt: skip
    p = ApiKeyStore(tmp_path, registry=reg).verify(key)
    assert p is not None and "budgets:write" in p.permissions


def test_a_corrupt_key_store_is_one_error_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # was sqlite3.DatabaseError: file is not a database (a traceback from `hub run` and `hub keys`)
    (tmp_path / "auth.sqlite").write_bytes(bytes(range(256)) * 48)
    with pytest.raises(ApiKeyStoreError, match="file is not a database") as info:
        ApiKeyStore(tmp_path)
    assert str(tmp_path / "auth.sqlite") in str(info.value)
    assert keys_main(["list", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hub keys: the API key store ") and err.count("\n") == 1
