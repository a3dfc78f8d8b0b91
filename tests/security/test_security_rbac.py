"""RBAC: the decision table, custom roles, the hierarchy, and the auth config's validation."""

from __future__ import annotations

import pytest

from hubcore.errors import ConfigError
from hubcore.security.config import AuthConfig, CustomRoleConfig, MtlsIdentity, OrgConfig
from hubcore.security.rbac import (
    BUILTIN_ROLES,
    PERMISSIONS,
    ForbiddenError,
    Hierarchy,
    Resource,
    RoleRegistry,
    decide,
    require,
)

REG = RoleRegistry.from_config(
    {"finops": CustomRoleConfig(extends="analytics_viewer", permissions=["budgets:write"]),
     "auditor": CustomRoleConfig(permissions=["audit:*", "config:read"])}
)  # fmt: skip


def who(role: str, tenant: str = "acme", team: str | None = "ml", subject: str = "u1"):  # type: ignore[no-untyped-def]
    return REG.principal(subject, tenant, [role], team=team)


ACME = Resource("events", "acme")
OTHER = Resource("events", "globex")
ALL = Resource("tenants", "*")
BUDGET_ML = Resource("budget", "acme", team="ml")
BUDGET_SEARCH = Resource("budget", "acme", team="search")
DASH_MINE = Resource("dashboard", "acme", team="search", owner="u1")
DASH_THEIRS = Resource("dashboard", "acme", team="search", owner="u2")

# (role, action, resource, cross_tenant requested, allowed, reason fragment)
TABLE = [
    ("ingest", "events:write", ACME, False, True, "allowed"),
    ("ingest", "events:read", ACME, False, False, "lacks permission events:read"),
    ("ingest", "query:run", ACME, False, False, "lacks permission"),
    ("ingest", "events:write", OTHER, False, False, "belongs to tenant 'globex'"),
    ("ingest", "events:write", OTHER, True, False, "needs platform_admin"),
    ("analytics_viewer", "events:read", ACME, False, True, "allowed"),
    ("analytics_viewer", "query:run", ACME, False, True, "allowed"),
    ("analytics_viewer", "query:export", ACME, False, False, "lacks permission query:export"),
    ("analytics_viewer", "dashboards:read", ACME, False, True, "allowed"),
    ("analytics_viewer", "dashboards:create", ACME, False, False, "lacks permission"),
    ("analytics_viewer", "events:write", ACME, False, False, "lacks permission events:write"),
    ("analytics_viewer", "budgets:write", BUDGET_ML, False, False, "lacks permission budgets:write"),
    ("analytics_viewer", "dlq:read", ACME, False, False, "lacks permission dlq:read"),
    ("analytics_viewer", "events:read", OTHER, False, False, "cross-tenant access was not requested"),
    ("analytics_editor", "query:export", ACME, False, True, "allowed"),
    ("analytics_editor", "budgets:write", BUDGET_ML, False, True, "allowed"),
    ("analytics_editor", "budgets:write", BUDGET_SEARCH, False, False, "needs membership of that team"),
    ("analytics_editor", "alerts:manage", Resource("alert", "acme", team="search"), False, False, "team"),
    ("analytics_editor", "alerts:ack", Resource("alert", "acme", team="ml"), False, True, "allowed"),
    ("analytics_editor", "alerts:ack", Resource("alert", "acme"), False, True, "allowed"),
    ("analytics_editor", "dashboards:delete", DASH_MINE, False, True, "allowed"),
    ("analytics_editor", "dashboards:delete", DASH_THEIRS, False, False, "or ownership"),
    ("analytics_editor", "dlq:replay", ACME, False, False, "lacks permission dlq:replay"),
    ("analytics_editor", "keys:manage", ACME, False, False, "lacks permission keys:manage"),
    ("analytics_editor", "data:erase", ACME, False, False, "lacks permission"),
    ("tenant_admin", "budgets:write", BUDGET_SEARCH, False, True, "allowed"),
    ("tenant_admin", "dashboards:delete", DASH_THEIRS, False, True, "allowed"),
    ("tenant_admin", "keys:manage", ACME, False, True, "allowed"),
    ("tenant_admin", "audit:read", ACME, False, True, "allowed"),
    ("tenant_admin", "data:erase", ACME, False, True, "allowed"),
    ("tenant_admin", "dlq:replay", Resource("dlq", "acme", team="search"), False, True, "allowed"),
    ("tenant_admin", "tenants:admin", ALL, True, False, "lacks permission tenants:admin"),
    ("tenant_admin", "events:read", OTHER, True, False, "needs platform_admin"),
    ("platform_admin", "events:read", OTHER, False, False, "cross-tenant access was not requested"),
    ("platform_admin", "events:read", OTHER, True, True, "allowed"),
    ("platform_admin", "tenants:admin", ALL, True, True, "allowed"),
    ("platform_admin", "tenants:admin", ALL, False, False, "not requested"),
    ("platform_admin", "budgets:write", BUDGET_SEARCH, False, True, "allowed"),
    ("platform_admin", "nuke:everything", ACME, False, False, "unknown action"),
    ("finops", "budgets:write", BUDGET_ML, False, True, "allowed"),
    ("finops", "budgets:write", BUDGET_SEARCH, False, False, "needs membership"),
    ("finops", "events:read", ACME, False, True, "allowed"),
    ("finops", "dashboards:create", ACME, False, False, "lacks permission"),
    ("auditor", "audit:read", ACME, False, True, "allowed"),
    ("auditor", "events:read", ACME, False, False, "lacks permission"),
    ("no_such_role", "events:read", ACME, False, False, "roles: none"),
]


@pytest.mark.parametrize(("role", "action", "resource", "cross", "allowed", "reason"), TABLE)
def test_decision_table(role: str, action: str, resource: Resource, cross: bool, allowed: bool, reason: str) -> None:
    d = decide(who(role), action, resource, cross_tenant=cross)
    assert d.allowed is allowed, d.reason
    assert reason in d.reason


def test_table_is_big_and_roles_cover_spec() -> None:
    assert len(TABLE) >= 30
    assert len(PERMISSIONS) >= 20
    assert set(BUILTIN_ROLES) == {"platform_admin", "tenant_admin", "analytics_editor", "analytics_viewer", "ingest"}
    assert BUILTIN_ROLES["ingest"] == {"events:write"}
    assert who("platform_admin").cross_tenant and not who("tenant_admin").cross_tenant


def test_team_scope_without_team_and_require() -> None:
    nobody = REG.principal("u9", "acme", ["analytics_editor"])
    d = decide(nobody, "budgets:write", BUDGET_ML)
    assert not d.allowed and "no team" in d.reason
    with pytest.raises(ForbiddenError, match="needs membership"):
        require(nobody, "budgets:write", BUDGET_ML)
    require(who("analytics_editor"), "budgets:write", BUDGET_ML)


def test_direct_permissions_but_never_tenants_admin() -> None:
    p = REG.principal("svc", "acme", [], permissions=["events:read", "tenants:admin", "bogus"])
    assert p.permissions == {"events:read"}


@pytest.mark.parametrize(
    ("roles", "key", "message"),
    [
        ({"x": CustomRoleConfig(permissions=["nope:do"])}, "service.auth.roles.x.permissions", "unknown permission"),
        ({"x": CustomRoleConfig(extends="ghost")}, "service.auth.roles.x.extends", "unknown role"),
        ({"x": CustomRoleConfig(extends="platform_admin")}, "service.auth.roles.x.extends", "cannot extend"),
        ({"ingest": CustomRoleConfig()}, "service.auth.roles.ingest", "built-in"),
        ({"x": CustomRoleConfig(permissions=["*"])}, "service.auth.roles.x.permissions", "reserved"),
        ({"x": CustomRoleConfig(permissions=["zz:*"])}, "service.auth.roles.x.permissions", "matches no"),
    ],
)
def test_custom_role_validation(roles: dict[str, CustomRoleConfig], key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as ei:
        AuthConfig(roles=roles).validate()
    assert ei.value.key == key


def test_custom_role_chain_and_wildcards() -> None:
    reg = RoleRegistry.from_config({"a": CustomRoleConfig(permissions=["alerts:*"]),
                                    "b": CustomRoleConfig(extends="a", permissions=["budgets:read"])})  # fmt: skip
    assert reg.roles["b"] == {"alerts:read", "alerts:ack", "alerts:manage", "budgets:read"}


def test_hierarchy_enriches_team_and_org() -> None:
    h = Hierarchy.from_config({"acme": OrgConfig(teams={"ml": ["alice"], "search": ["bob"]})})
    alice = h.enrich(REG.principal("alice", "acme", ["analytics_editor"]))
    assert (alice.org, alice.team) == ("acme", "ml")
    carol = h.enrich(REG.principal("carol", "acme", ["analytics_editor"], team="search"))
    assert (carol.org, carol.team) == ("acme", "search")
    assert decide(alice, "budgets:write", BUDGET_ML).allowed
    stranger = REG.principal("zed", "acme", [])
    assert h.enrich(stranger) is stranger


def test_auth_config_cross_checks() -> None:
    with pytest.raises(ConfigError, match="already in acme/ml"):
        AuthConfig(orgs={"acme": OrgConfig(teams={"ml": ["a"], "search": ["a"]})}).validate()
    with pytest.raises(ConfigError) as ei:
        AuthConfig(mtls_subjects={"c1": MtlsIdentity(tenant_id="t", role="root")}).validate()
    assert ei.value.key == "service.auth.mtls_subjects.c1.role"
    with pytest.raises(ConfigError, match="no method"):
        AuthConfig(enabled=True, api_keys=False).validate()
    AuthConfig(enabled=True).validate()
