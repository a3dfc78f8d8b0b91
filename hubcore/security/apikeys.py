"""API keys: ``lah_<key_id>_<secret>``, stored hashed in SQLite at ``<data_dir>/auth.sqlite``.

SQLite (WAL mode) rather than the DuckDB store, because DuckDB allows one process per database and
``hub keys create`` must work while the hub runs.

Only ``sha256(secret)`` is stored. A slow password hash (bcrypt, argon2) protects *low-entropy* secrets
against guessing; these secrets are 192 random bits, so a stolen hash cannot be brute-forced and a
fast hash keeps verification cheap on every request. Comparison is constant-time. The secret is printed
once at creation and never stored or logged; ``key_id`` is the public, loggable part.

    >>> import tempfile
    >>> store = ApiKeyStore(tempfile.mkdtemp())
    >>> created = store.create(tenant_id="acme", role="ingest", description="observatory")
    >>> p = store.verify(created.key)
    >>> (p.tenant_id, sorted(p.roles), p.key_id == created.info.key_id)
    ('acme', ['ingest'], True)
    >>> store.revoke(created.info.key_id)
    True
    >>> store.verify(created.key) is None
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hubcore.security.principal import Principal
from hubcore.security.rbac import RoleRegistry
from hubcore.tenants import TENANT_RULE, is_tenant

KEY_PREFIX = "lah_"
MAX_KEY_LIFETIME_S = 10 * 365 * 86_400  # an expiry beyond this is a typo, not a policy
MIN_KEY_LIFETIME_S = 1  # one below this (``1e-300``) would make a key already expired when it is handed out


def lifetime_error(name: str, value: float) -> str:
    """What is wrong with a key lifetime ``value`` (in seconds) given as ``name``.

    >>> lifetime_error("expires_in_seconds", 1e-300)
    'expires_in_seconds must be between 1 and 315,360,000 seconds (10 years), got 1e-300'
    """
    return (f"{name} must be between {MIN_KEY_LIFETIME_S} and {MAX_KEY_LIFETIME_S:,} seconds (10 years), "
            f"got {value:.6g}")  # fmt: skip


_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
  key_id TEXT PRIMARY KEY,
  secret_sha256 TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  role TEXT NOT NULL,
  team TEXT,
  description TEXT NOT NULL DEFAULT '',
  created_at REAL NOT NULL,
  expires_at REAL,
  revoked_at REAL
)"""


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """Everything about a key except its secret."""

    key_id: str
    tenant_id: str
    role: str
    team: str | None
    description: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None

    def active(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: str  # shown once
    info: ApiKeyInfo


def parse_key(key: str) -> tuple[str, str] | None:
    """``lah_<key_id>_<secret>`` → (key_id, secret), or None when it is not shaped like one."""
    if not key.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    if not sep or len(key_id) != 16 or len(secret) != 48 or not (key_id + secret).isalnum():
        return None
    return key_id, secret


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyStoreError(RuntimeError):
    """``auth.sqlite`` cannot be opened (not a database, corrupt, unreadable); the message names the file."""


class ApiKeyStore:
    """Create, list, revoke and verify keys. Thread-safe; several processes may share the file.

    ``verify`` caches a key's row for ``cache_seconds``: a revocation by *another* process takes effect
    within that time, one by this store at once. ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        registry: RoleRegistry | None = None,
        cache_seconds: float = 5.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(data_dir) / "auth.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.registry = registry or RoleRegistry.from_config({})
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self.clock = clock
        self._cache: OrderedDict[str, tuple[float, tuple[str, ApiKeyInfo] | None]] = OrderedDict()
        self._lock = threading.Lock()
        try:
            with self._connect() as con:
                con.execute("PRAGMA journal_mode=WAL")
                con.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:  # not a database, corrupt; locked past the timeout, unreadable
            todo = (
                "check its permissions, and that no other process holds it locked"
                if isinstance(exc, sqlite3.OperationalError)
                else "restore it from a backup, or move it aside to start with no API keys "
                "(then create new ones with `hub keys create`)"
            )
            raise ApiKeyStoreError(f"the API key store {self.path} cannot be opened ({exc}); {todo}") from None

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=10.0)
        try:
            with con:
                yield con
        finally:
            con.close()

    # -- management -------------------------------------------------------------------------------
    def create(
        self,
        *,
        tenant_id: str,
        role: str,
        team: str | None = None,
        description: str = "",
        expires_in: float | None = None,
    ) -> CreatedKey:
        """A new key for ``tenant_id`` with ``role``; ``expires_in`` seconds from now (None: never)."""
        if not self.registry.is_known(role):
            raise ValueError(f"unknown role {role!r} (known: {', '.join(sorted(self.registry.roles))})")
        if not is_tenant(tenant_id):
            raise ValueError(f"bad tenant {tenant_id!r}: {TENANT_RULE} (as X-Scope-OrgID)")
        if expires_in is not None and not MIN_KEY_LIFETIME_S <= expires_in <= MAX_KEY_LIFETIME_S:
            raise ValueError(lifetime_error("expires_in", expires_in))
        if team is not None and not 0 < len(team) <= 128:
            raise ValueError("team must be 1-128 characters")
        key_id = secrets.token_hex(8)
        secret = secrets.token_hex(24)
        now = self.clock()
        info = ApiKeyInfo(key_id, tenant_id, role, team, description, now,
                          None if expires_in is None else now + expires_in, None)  # fmt: skip
        with self._connect() as con:
            con.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (key_id, _digest(secret), tenant_id, role, team, description, now, info.expires_at),
            )
        return CreatedKey(f"{KEY_PREFIX}{key_id}_{secret}", info)

    def list(self, *, tenant_id: str | None = None, include_revoked: bool = True) -> list[ApiKeyInfo]:
        """Keys (never their secrets), oldest first."""
        sql = "SELECT key_id, tenant_id, role, team, description, created_at, expires_at, revoked_at FROM api_keys"
        where, params = [], []
        if tenant_id is not None:
            where.append("tenant_id = ?")
            params.append(tenant_id)
        if not include_revoked:
            where.append("revoked_at IS NULL")
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._connect() as con:
            rows = con.execute(sql + " ORDER BY created_at, key_id", params).fetchall()
        return [ApiKeyInfo(*row) for row in rows]

    def get(self, key_id: str) -> ApiKeyInfo | None:
        row = self._row(key_id)
        return None if row is None else row[1]

    def revoke(self, key_id: str) -> bool:
        """Revoke; False when there is no such (unrevoked) key."""
        with self._connect() as con:
            cur = con.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (self.clock(), key_id)
            )
        with self._lock:
            self._cache.pop(key_id, None)
        return cur.rowcount > 0

    # -- verification -----------------------------------------------------------------------------
    def verify(self, key: str) -> Principal | None:
        """The key's principal, or None (malformed, unknown, wrong secret, revoked or expired)."""
        parsed = parse_key(key)
        if parsed is None:
            return None
        key_id, secret = parsed
        row = self._cached_row(key_id)
        # compare even when the key is unknown, so timing does not reveal which key ids exist
        stored = row[0] if row is not None else "0" * 64
        if not hmac.compare_digest(_digest(secret), stored) or row is None:
            return None
        info = row[1]
        if not info.active(self.clock()):
            return None
        return self.registry.principal(
            f"apikey:{key_id}", info.tenant_id, [info.role], team=info.team, auth_method="api_key", key_id=key_id
        )

    def _cached_row(self, key_id: str) -> tuple[str, ApiKeyInfo] | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_id)
            if hit is not None and now - hit[0] < self.cache_seconds:
                return hit[1]
        row = self._row(key_id)
        if self.cache_seconds > 0:
            with self._lock:
                self._cache[key_id] = (now, row)
                self._cache.move_to_end(key_id)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return row

    def _row(self, key_id: str) -> tuple[str, ApiKeyInfo] | None:
        with self._connect() as con:
            r = con.execute(
                "SELECT secret_sha256, key_id, tenant_id, role, team, description, created_at, expires_at, "
                "revoked_at FROM api_keys WHERE key_id = ?",
                (key_id,),
            ).fetchone()
        return None if r is None else (r[0], ApiKeyInfo(*r[1:]))
