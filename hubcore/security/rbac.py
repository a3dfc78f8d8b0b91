"""Roles, permissions, the org → team → user hierarchy and the one authorisation decision.

Every route asks one question, OPA-style: may this principal do this action on this resource?

    >>> reg = RoleRegistry.from_config({})
    >>> alice = reg.principal("alice", "acme", ["analytics_editor"], team="ml")
    >>> decide(alice, "budgets:write", Resource("budget", "acme", team="ml"))
    Decision(allowed=True, reason='allowed: budgets:write on budget of tenant acme')
    >>> decide(alice, "budgets:write", Resource("budget", "acme", team="search")).reason
    "denied: budgets:write on team 'search' needs membership of that team (alice is in team 'ml') or teams:all"

The rules, in order (the first that fails is the reason):

1. the action is a known permission;
2. the principal holds it (the union of its roles' permissions, plus any granted directly);
3. the resource's tenant is the principal's, unless the request explicitly asked for another tenant
   (``cross_tenant=True``) and the principal may cross tenants (only ``platform_admin``);
   ``Resource.tenant_id == "*"`` (all tenants) counts as another tenant;
4. team-scoped actions (:data:`TEAM_SCOPED`) on a resource that names a team need the principal's team
   to be that team, or ``teams:all`` (``tenant_admin``, ``platform_admin``); for owner-scoped actions
   (:data:`OWNER_SCOPED`) being the resource's owner is enough too;
5. otherwise: allowed. Anything not allowed is denied (deny by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from hubcore.errors import ConfigError, HubError
from hubcore.security.principal import AuthMethod, Principal

if TYPE_CHECKING:
    from hubcore.security.config import CustomRoleConfig, OrgConfig

#: Every permission, ``resource:verb``. ``teams:all`` lifts the team scope of rule 4 inside a tenant.
PERMISSIONS: frozenset[str] = frozenset(
    {
        "events:write", "events:read", "analytics:read", "query:run", "query:export",
        "dashboards:read", "dashboards:create", "dashboards:delete",
        "alerts:read", "alerts:ack", "alerts:manage", "budgets:read", "budgets:write",
        "forecasts:read", "forecasts:run", "whatif:run", "anomalies:read", "anomalies:feedback",
        "correlations:read", "incidents:read", "rca:run", "dlq:read", "dlq:replay", "schemas:read",
        "keys:manage", "tenants:admin", "audit:read", "data:erase", "config:read", "metrics:read", "teams:all",
    }
)  # fmt: skip

_VIEWER = frozenset(
    {
        "events:read", "analytics:read", "query:run", "dashboards:read", "alerts:read", "budgets:read",
        "forecasts:read", "anomalies:read", "correlations:read", "incidents:read", "schemas:read", "metrics:read",
    }
)  # fmt: skip
_EDITOR = _VIEWER | {
    "query:export", "dashboards:create", "dashboards:delete", "alerts:ack", "alerts:manage", "budgets:write",
    "forecasts:run", "whatif:run", "anomalies:feedback", "rca:run", "dlq:read",
}  # fmt: skip

#: The built-in roles of the specification, plus ``ingest`` for the source modules.
BUILTIN_ROLES: Mapping[str, frozenset[str]] = {
    "platform_admin": PERMISSIONS,
    "tenant_admin": PERMISSIONS - {"tenants:admin"},
    "analytics_editor": frozenset(_EDITOR),
    "analytics_viewer": _VIEWER,
    "ingest": frozenset({"events:write"}),
}
#: Roles whose holders may act on other tenants (when a request explicitly asks).
CROSS_TENANT_ROLES = frozenset({"platform_admin"})
#: Writes that a team owns: rule 4.
TEAM_SCOPED = frozenset(
    {"budgets:write", "alerts:manage", "alerts:ack", "dashboards:delete", "anomalies:feedback", "dlq:replay"}
)
#: Team-scoped actions that the resource's owner may do whatever the team.
OWNER_SCOPED = frozenset({"dashboards:delete"})


class Resource(NamedTuple):
    """What an action is on. ``tenant_id="*"`` means every tenant (platform-level listings)."""

    type: str
    tenant_id: str
    team: str | None = None
    owner: str | None = None


class Decision(NamedTuple):
    allowed: bool
    reason: str


class ForbiddenError(HubError):
    """The decision was a denial (→ 403). ``reason`` is :attr:`Decision.reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decide(principal: Principal, action: str, resource: Resource, *, cross_tenant: bool = False) -> Decision:
    """The one authorisation decision (see the module docstring for the rules)."""
    if action not in PERMISSIONS:
        return Decision(False, f"denied: unknown action {action!r}")
    if action not in principal.permissions:
        roles = ", ".join(sorted(principal.roles)) or "none"
        return Decision(False, f"denied: {principal.subject} (roles: {roles}) lacks permission {action}")
    if resource.tenant_id != principal.tenant_id:
        if not cross_tenant:
            return Decision(
                False,
                f"denied: {resource.type} belongs to tenant {resource.tenant_id!r}, "
                f"{principal.subject} to {principal.tenant_id!r} (cross-tenant access was not requested)",
            )
        if not principal.cross_tenant:
            return Decision(False, f"denied: cross-tenant access to {resource.tenant_id!r} needs platform_admin")
    if action in TEAM_SCOPED and resource.team is not None and "teams:all" not in principal.permissions:
        owner_ok = action in OWNER_SCOPED and resource.owner is not None and resource.owner == principal.subject
        if principal.team != resource.team and not owner_ok:
            mine = f"team {principal.team!r}" if principal.team else "no team"
            who = " or ownership" if action in OWNER_SCOPED else ""
            return Decision(
                False,
                f"denied: {action} on team {resource.team!r} needs membership of that team "
                f"({principal.subject} is in {mine}){who} or teams:all",
            )
    return Decision(True, f"allowed: {action} on {resource.type} of tenant {resource.tenant_id}")


def require(principal: Principal, action: str, resource: Resource, *, cross_tenant: bool = False) -> None:
    """:func:`decide`, raising :class:`ForbiddenError` on a denial."""
    decision = decide(principal, action, resource, cross_tenant=cross_tenant)
    if not decision.allowed:
        raise ForbiddenError(decision.reason)


def expand_permissions(patterns: Iterable[str], *, key: str = "permissions") -> frozenset[str]:
    """``events:*`` → every ``events:`` permission; ``*`` → all. Unknown names raise ``ConfigError``."""
    out: set[str] = set()
    for pat in patterns:
        if pat == "*":
            out |= PERMISSIONS
        elif pat.endswith(":*"):
            match = {p for p in PERMISSIONS if p.startswith(pat[:-1])}
            if not match:
                raise ConfigError(key, f"{pat!r} matches no permission")
            out |= match
        elif pat in PERMISSIONS:
            out.add(pat)
        else:
            raise ConfigError(key, f"unknown permission {pat!r} (known: {', '.join(sorted(PERMISSIONS))})")
    return frozenset(out)


@dataclass(frozen=True)
class RoleRegistry:
    """Built-in plus custom roles (name → permissions)."""

    roles: Mapping[str, frozenset[str]]

    @classmethod
    def from_config(cls, custom: Mapping[str, CustomRoleConfig], *, key: str = "service.auth.roles") -> RoleRegistry:
        roles: dict[str, frozenset[str]] = dict(BUILTIN_ROLES)
        for name, rc in custom.items():
            where = f"{key}.{name}"
            if name in BUILTIN_ROLES:
                raise ConfigError(where, f"{name!r} is a built-in role; choose another name and use extends")
            base: frozenset[str] = frozenset()
            if rc.extends is not None:
                if rc.extends in CROSS_TENANT_ROLES:
                    raise ConfigError(f"{where}.extends", f"a custom role cannot extend {rc.extends!r}")
                if rc.extends not in roles:
                    raise ConfigError(f"{where}.extends", f"unknown role {rc.extends!r} (define it first)")
                base = roles[rc.extends]
            perms = base | expand_permissions(rc.permissions, key=f"{where}.permissions")
            if "tenants:admin" in perms:
                raise ConfigError(f"{where}.permissions", "tenants:admin is reserved to platform_admin")
            roles[name] = perms
        return cls(roles)

    def is_known(self, role: str) -> bool:
        return role in self.roles

    def permissions_for(self, roles: Iterable[str]) -> frozenset[str]:
        """Union of the known roles' permissions (unknown role names grant nothing)."""
        out: frozenset[str] = frozenset()
        for r in roles:
            out |= self.roles.get(r, frozenset())
        return out

    def principal(
        self,
        subject: str,
        tenant_id: str,
        roles: Iterable[str],
        *,
        permissions: Iterable[str] = (),
        team: str | None = None,
        org: str | None = None,
        auth_method: AuthMethod = "anonymous",
        key_id: str | None = None,
    ) -> Principal:
        """A :class:`Principal` with its permissions resolved; unknown roles and permissions are dropped."""
        known = frozenset(r for r in roles if r in self.roles)
        perms = self.permissions_for(known) | (frozenset(permissions) & PERMISSIONS - {"tenants:admin"})
        return Principal(
            subject=subject, tenant_id=tenant_id, roles=known, permissions=perms, team=team, org=org,
            auth_method=auth_method, key_id=key_id, cross_tenant=bool(known & CROSS_TENANT_ROLES),
        )  # fmt: skip


@dataclass(frozen=True)
class Hierarchy:
    """org → team → users. Fills a principal's ``team``/``org`` when its credential does not say.

    >>> from hubcore.security.config import OrgConfig
    >>> Hierarchy.from_config({"acme": OrgConfig(teams={"ml": ["alice"]})}).locate("alice")
    ('acme', 'ml')
    """

    users: Mapping[str, tuple[str, str]]
    teams: Mapping[str, str]

    @classmethod
    def from_config(cls, orgs: Mapping[str, OrgConfig]) -> Hierarchy:
        users: dict[str, tuple[str, str]] = {}
        teams: dict[str, str] = {}
        for org, oc in orgs.items():
            for team, members in oc.teams.items():
                teams[team] = org
                for user in members:
                    users[user] = (org, team)
        return cls(users, teams)

    def locate(self, subject: str) -> tuple[str, str] | None:
        """(org, team) of a user, or None."""
        return self.users.get(subject)

    def org_of(self, team: str) -> str | None:
        return self.teams.get(team)

    def enrich(self, p: Principal) -> Principal:
        """``p`` with ``team``/``org`` filled in from the hierarchy where they are missing."""
        team, org = p.team, p.org
        if team is None and (loc := self.locate(p.subject)) is not None:
            org, team = org or loc[0], loc[1]
        if org is None and team is not None:
            org = self.org_of(team)
        if (team, org) == (p.team, p.org):
            return p
        return Principal(p.subject, p.tenant_id, p.roles, p.permissions, team, org, p.auth_method, p.key_id,
                         p.cross_tenant)  # fmt: skip
