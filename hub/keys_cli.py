"""``hub keys``: manage API keys in ``<data_dir>/auth.sqlite`` (works while the hub runs).

    hub keys create --data-dir ./data --tenant acme --role ingest [--team ml] [--expires-in 30d] [--description D]
    hub keys list   --data-dir ./data [--tenant acme] [--json]
    hub keys revoke --data-dir ./data KEY_ID

``create`` prints the new key on its last line, once; only its sha256 is stored. Custom roles
(``service.auth.roles``) are known with ``--config FILE``. Exit codes: 0 done, 1 no such key,
2 bad usage (unknown role, bad duration, missing data directory).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import msgspec
import yaml

from hubcore import durations
from hubcore.errors import ConfigError
from hubcore.security.apikeys import ApiKeyInfo, ApiKeyStore, ApiKeyStoreError
from hubcore.security.config import AuthConfig
from hubcore.security.rbac import RoleRegistry
from hubcore.times import iso_s


def parse_duration(text: str) -> float:
    """``30d`` → 2592000.0; units s, m, h, d, w, y (:func:`hubcore.durations.parse_duration`). Raises
    ValueError."""
    try:
        return durations.parse_duration(text, allow_number=False)
    except durations.DurationError:
        raise ValueError(f"bad duration {text!r}: use a positive number and a unit, e.g. 90m, 12h, 30d, 1y") from None


def _iso(ts: float | None) -> str:
    """A key's time as ``GET /api/v1/keys`` gives it (:func:`hubcore.times.iso_s`), or ``never``."""
    return "never" if ts is None else iso_s(ts)


def load_registry(config: str | None) -> RoleRegistry:
    """Built-in roles plus ``service.auth.roles`` of the YAML file ``config`` (env substituted)."""
    if config is None:
        return RoleRegistry.from_config({})
    from hubcore.config import convert_expanded, parse_config_text

    expanded = parse_config_text(Path(config).read_text())
    auth = ((expanded.data.get("service") or {}).get("auth")) or {}
    try:
        cfg = convert_expanded(auth, AuthConfig, expanded.raw, ("service", "auth"))
    except msgspec.ValidationError as exc:
        raise ConfigError("service.auth", str(exc)) from None
    return RoleRegistry.from_config(cfg.roles)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hub keys", description="Manage the hub's API keys (stored hashed).")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", required=True, help="the hub's data directory (holds auth.sqlite)")
    common.add_argument("--config", help="hub YAML config, for custom roles under service.auth.roles")
    c = sub.add_parser("create", parents=[common], help="create a key; prints it once, on the last line")
    c.add_argument("--tenant", required=True, help="tenant the key acts for")
    c.add_argument("--role", required=True, help="platform_admin, tenant_admin, analytics_editor, "
                   "analytics_viewer, ingest, or a custom role")  # fmt: skip
    c.add_argument("--team", help="team the key belongs to (team-scoped writes)")
    c.add_argument("--expires-in", help="lifetime, e.g. 90m, 12h, 30d, 1y (default: never expires)")
    c.add_argument("--description", default="", help="what the key is for (shown by list)")
    ls = sub.add_parser("list", parents=[common], help="list keys (never their secrets)")
    ls.add_argument("--tenant", help="only this tenant's keys")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    r = sub.add_parser("revoke", parents=[common], help="revoke a key at once")
    r.add_argument("key_id", metavar="KEY_ID", help="the id shown by create/list (lah_<KEY_ID>_...)")
    return p


def _row(info: ApiKeyInfo, now: float) -> dict[str, object]:
    status = "revoked" if info.revoked_at else ("expired" if not info.active(now) else "active")
    return {"key_id": info.key_id, "tenant_id": info.tenant_id, "role": info.role, "team": info.team,
            "status": status, "created": _iso(info.created_at), "expires": _iso(info.expires_at),
            "description": info.description}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        print(f"hub keys: data directory {str(data_dir)!r} does not exist (give the hub's --data-dir)", file=sys.stderr)
        return 2
    try:
        registry = load_registry(args.config)
    except (OSError, yaml.YAMLError, ConfigError) as exc:
        print(f"hub keys: cannot read --config: {exc}", file=sys.stderr)
        return 2
    try:
        store = ApiKeyStore(data_dir, registry=registry, cache_seconds=0)
    except ApiKeyStoreError as exc:
        print(f"hub keys: {exc}", file=sys.stderr)
        return 1
    if args.command == "create":
        try:
            expires = parse_duration(args.expires_in) if args.expires_in else None
            created = store.create(tenant_id=args.tenant, role=args.role, team=args.team,
                                   description=args.description, expires_in=expires)  # fmt: skip
        except ValueError as exc:
            print(f"hub keys create: {exc}", file=sys.stderr)
            return 2
        info = created.info
        team = f", team {info.team}" if info.team else ""
        print(f"created key {info.key_id} for tenant {info.tenant_id}, role {info.role}{team}, "
              f"expires {_iso(info.expires_at)}")  # fmt: skip
        print("Store this API key now: it will not be shown again.")
        print(created.key)
        return 0
    if args.command == "list":
        now = time.time()
        rows = [_row(i, now) for i in store.list(tenant_id=args.tenant)]
        if args.json:
            for row in rows:
                print(json.dumps(row))
            return 0
        cols = ["key_id", "tenant_id", "role", "team", "status", "expires", "description"]
        table = [[str(r[c] or "") for c in cols] for r in rows]
        widths = [max([len(c), *(len(t[i]) for t in table)]) for i, c in enumerate(cols)]
        for line in [[c.upper() for c in cols], *table]:
            print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
        return 0
    if store.revoke(args.key_id):
        print(f"revoked key {args.key_id}")
        return 0
    print(f"hub keys revoke: no active key {args.key_id!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
