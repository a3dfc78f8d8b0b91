"""The one tenant-id grammar, for every path data or a credential can name a tenant by.

A tenant id is 1-128 letters, digits, ``_``, ``.`` and ``-``, starting with a letter or a digit (what
``X-Scope-OrgID`` carries to Loki, Tempo and VictoriaMetrics). So the hub's own tenant (``_hub``, its
self-traces) and ``*`` (all tenants, a query's platform-admin scope) can never be a caller's tenant, and
whatever a receiver stores can be read and erased through the API.

>>> is_tenant("acme-prod.eu")
True
>>> [is_tenant(t) for t in ("_hub", "*", "../x", "", "a" * 129)]
[False, False, False, False, False]
>>> check_tenant("a b", "X-Scope-OrgID")
Traceback (most recent call last):
...
hubcore.errors.PermanentError: X-Scope-OrgID must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit; got 'a b'
"""

from __future__ import annotations

import re
from typing import Final

from hubcore.errors import PermanentError

TENANT_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
TENANT_RULE: Final = "1-128 letters, digits, '_', '.' or '-', starting with a letter or digit"
INTERNAL_TENANT: Final = "_hub"  # the hub's own traces; outside the grammar on purpose
ALL_TENANTS: Final = "*"


def is_tenant(value: object) -> bool:
    """Whether ``value`` is a tenant id a caller may name."""
    return isinstance(value, str) and TENANT_RE.match(value) is not None


def check_tenant(value: str, where: str) -> str:
    """``value`` when it is a tenant id; else :class:`PermanentError` (``bad_tenant``) naming ``where``."""
    if not is_tenant(value):
        shown = value if len(value) <= 60 else value[:60] + "..."
        raise PermanentError(f"{where} must be {TENANT_RULE}; got {shown!r}", reason="bad_tenant")
    return value
