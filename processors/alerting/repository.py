"""The ``alerts``, ``alert_rules`` and ``alert_pending`` tables (DuckDB, created idempotently; tenant-scoped).

    repo = AlertRepository(store)
    repo.ensure_schema()
    repo.insert({"id": "a1", "tenant_id": "acme", "alertname": "X", "state": "firing", ...})
    repo.list_alerts("acme", state="firing")

Timestamps are seconds since the epoch in Python and ``TIMESTAMP`` (UTC) in DuckDB; the API shows
them as ISO-8601 with ``Z``. Labels and annotations are JSON text.

``alert_pending`` keeps the service's pending ``for`` timers across restarts: one row per
``(rule_id, tenant_id, fingerprint)`` with the instance's labels and ``since`` (when the condition was first
seen holding); ``alert_pending_seen`` has one row, the last evaluation round those rows were current at.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from processors.alerting.evaluator import StoreLike

#: column -> SQL type; the order is the table's.
ALERT_COLUMNS: dict[str, str] = {
    "id": "VARCHAR", "tenant_id": "VARCHAR", "source": "VARCHAR", "rule_id": "VARCHAR", "alertname": "VARCHAR",
    "fingerprint": "VARCHAR", "state": "VARCHAR", "severity": "VARCHAR", "labels": "VARCHAR",
    "annotations": "VARCHAR", "value": "DOUBLE", "starts_at": "TIMESTAMP", "ends_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP", "acknowledged_at": "TIMESTAMP", "acknowledged_by": "VARCHAR",
    "ack_comment": "VARCHAR", "resolved_by": "VARCHAR", "escalated": "BOOLEAN", "escalated_at": "TIMESTAMP",
    "suppressed": "BIGINT", "generator_url": "VARCHAR",
    # inhibition (a warning while the critical of the same alert and labels is open): the critical's fingerprint
    # and id, when the current inhibition began, when the last one ended
    "inhibited_by": "VARCHAR", "inhibited_by_id": "VARCHAR", "inhibited_at": "TIMESTAMP", "released_at": "TIMESTAMP",
}  # fmt: skip
#: columns added after the first release: an existing ``alerts`` table gets them (``ALTER TABLE``)
_ADDED_COLUMNS = ("inhibited_by", "inhibited_by_id", "inhibited_at", "released_at")
_TS = {c for c, t in ALERT_COLUMNS.items() if t == "TIMESTAMP"}
_JSON = {"labels", "annotations"}
OPEN_STATES = ("firing", "acknowledged")
STATES = ("firing", "acknowledged", "resolved")


def _to_db(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in _TS:
        return int(float(value) * 1e6)
    if column in _JSON:
        return json.dumps(value, sort_keys=True)
    return value


def _placeholder(column: str) -> str:
    return "make_timestamp(?)" if column in _TS else "?"


def _from_db(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in _TS:
        return _seconds(value)
    if column in _JSON:
        return json.loads(value)
    return value


def _seconds(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp()


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_api(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert row as the API shows it (timestamps ISO-8601), with ``inhibited`` (``inhibited_by`` is set)."""
    out = {k: (iso(v) if k in _TS else v) for k, v in alert.items()}
    out["inhibited"] = alert.get("inhibited_by") is not None
    return out


class AlertRepository:
    def __init__(self, store: StoreLike) -> None:
        self.store = store

    def ensure_schema(self) -> None:
        cur = self.store.cursor()
        cols = ",\n  ".join(f"{c} {t}" for c, t in ALERT_COLUMNS.items())
        cur.execute(f"CREATE TABLE IF NOT EXISTS alerts (\n  {cols}\n)")
        for column in _ADDED_COLUMNS:  # a table created by an older hub
            cur.execute(f"ALTER TABLE alerts ADD COLUMN IF NOT EXISTS {column} {ALERT_COLUMNS[column]}")
        cur.execute(
            "CREATE TABLE IF NOT EXISTS alert_rules (id VARCHAR, tenant_id VARCHAR, spec VARCHAR, "
            "created_at TIMESTAMP, created_by VARCHAR)"
        )
        cur.execute(
            "CREATE TABLE IF NOT EXISTS alert_pending (rule_id VARCHAR, tenant_id VARCHAR, fingerprint VARCHAR, "
            "labels VARCHAR, since TIMESTAMP)"
        )
        cur.execute("CREATE TABLE IF NOT EXISTS alert_pending_seen (seen_at TIMESTAMP)")
        cur.execute("INSERT INTO alert_pending_seen SELECT NULL WHERE NOT EXISTS (SELECT 1 FROM alert_pending_seen)")

    # -- alerts -----------------------------------------------------------------------------------
    def insert(self, alert: dict[str, Any]) -> None:
        cols = list(ALERT_COLUMNS)
        sql = f"INSERT INTO alerts ({', '.join(cols)}) VALUES ({', '.join(_placeholder(c) for c in cols)})"
        self.store.cursor().execute(sql, [_to_db(c, alert.get(c)) for c in cols])

    def update(self, alert_id: str, **fields: Any) -> None:
        if not fields:
            return
        sets = ", ".join(f"{c} = {_placeholder(c)}" for c in fields)
        params = [_to_db(c, v) for c, v in fields.items()] + [alert_id]
        self.store.cursor().execute(f"UPDATE alerts SET {sets} WHERE id = ?", params)

    def _select(self, where: str, params: list[Any], tail: str = "") -> list[dict[str, Any]]:
        cols = list(ALERT_COLUMNS)
        rows = self.store.cursor().execute(f"SELECT {', '.join(cols)} FROM alerts WHERE {where} {tail}", params)
        return [{c: _from_db(c, v) for c, v in zip(cols, row, strict=True)} for row in rows.fetchall()]

    def get(self, tenant_id: str, alert_id: str) -> dict[str, Any] | None:
        rows = self._select("id = ? AND (tenant_id = ? OR ? = '*')", [alert_id, tenant_id, tenant_id])
        return rows[0] if rows else None

    @staticmethod
    def _filters(
        tenant_id: str, state: str | None, severity: str | None, inhibited: bool | None
    ) -> tuple[str, list[Any]]:
        where, params = ["(tenant_id = ? OR ? = '*')"], [tenant_id, tenant_id]
        if state is not None:
            where.append("state = ?")
            params.append(state)
        if severity is not None:
            where.append("severity = ?")
            params.append(severity)
        if inhibited is not None:
            where.append("inhibited_by IS NOT NULL" if inhibited else "inhibited_by IS NULL")
        return " AND ".join(where), params

    def list_alerts(
        self, tenant_id: str, *, state: str | None = None, severity: str | None = None, limit: int = 1000,
        inhibited: bool | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Newest first. ``tenant_id="*"``: every tenant. ``inhibited``: only (not) inhibited ones; None: all."""
        where, params = self._filters(tenant_id, state, severity, inhibited)
        return self._select(where, [*params, limit], "ORDER BY starts_at DESC, id LIMIT ?")

    def count_inhibited(self, tenant_id: str, *, state: str | None = None, severity: str | None = None) -> int:
        """How many of the alerts :meth:`list_alerts` would list (without limit) are inhibited."""
        where, params = self._filters(tenant_id, state, severity, True)
        row = self.store.cursor().execute(f"SELECT count(*) FROM alerts WHERE {where}", params).fetchone()
        return int(row[0]) if row else 0

    def find_open(self, tenant_id: str, source: str, fingerprint: str) -> dict[str, Any] | None:
        rows = self._select(
            "tenant_id = ? AND source = ? AND fingerprint = ? AND state IN ('firing', 'acknowledged')",
            [tenant_id, source, fingerprint], "ORDER BY starts_at DESC LIMIT 1",
        )  # fmt: skip
        return rows[0] if rows else None

    def last_resolved(self, tenant_id: str, source: str, fingerprint: str) -> dict[str, Any] | None:
        rows = self._select(
            "tenant_id = ? AND source = ? AND fingerprint = ? AND state = 'resolved'",
            [tenant_id, source, fingerprint], "ORDER BY ends_at DESC LIMIT 1",
        )  # fmt: skip
        return rows[0] if rows else None

    def open_alerts(self, source: str | None = "rule") -> list[dict[str, Any]]:
        """Open alerts of ``source`` (None: of every source), oldest first."""
        if source is None:
            return self._select("state IN ('firing', 'acknowledged')", [], "ORDER BY starts_at, id")
        return self._select("source = ? AND state IN ('firing', 'acknowledged')", [source], "ORDER BY starts_at")

    # -- custom rules -----------------------------------------------------------------------------
    def insert_rule(self, rule_id: str, tenant_id: str, spec: dict[str, Any], now: float, by: str | None) -> None:
        self.store.cursor().execute(
            "INSERT INTO alert_rules VALUES (?, ?, ?, make_timestamp(?), ?)",
            [rule_id, tenant_id, json.dumps(spec, sort_keys=True), int(now * 1e6), by],
        )

    def delete_rule(self, tenant_id: str, rule_id: str) -> bool:
        cur = self.store.cursor()
        found = cur.execute(
            "SELECT count(*) FROM alert_rules WHERE id = ? AND tenant_id = ?", [rule_id, tenant_id]
        ).fetchone()
        if not found or not found[0]:
            return False
        cur.execute("DELETE FROM alert_rules WHERE id = ? AND tenant_id = ?", [rule_id, tenant_id])
        return True

    def custom_rules(self) -> list[tuple[str, str, dict[str, Any]]]:
        """``(id, tenant_id, spec)`` of every tenant's custom rules, oldest first."""
        rows = self.store.cursor().execute("SELECT id, tenant_id, spec FROM alert_rules ORDER BY created_at, id")
        return [(str(i), str(t), json.loads(s)) for i, t, s in rows.fetchall()]

    # -- pending ``for`` timers -------------------------------------------------------------------
    def pending(self) -> list[tuple[str, str, str, dict[str, str], float]]:
        """``(rule_id, tenant_id, fingerprint, labels, since)`` of every stored pending entry, oldest first."""
        rows = self.store.cursor().execute(
            "SELECT rule_id, tenant_id, fingerprint, labels, since FROM alert_pending "
            "ORDER BY since, rule_id, tenant_id, fingerprint"
        )
        return [
            (str(r), str(t), str(f), json.loads(lab) if lab else {}, _seconds(s)) for r, t, f, lab, s in rows.fetchall()
        ]

    def add_pending(self, entries: list[tuple[str, str, str, dict[str, str], float]]) -> None:
        """Store new pending entries ``(rule_id, tenant_id, fingerprint, labels, since)``."""
        if entries:
            self.store.cursor().executemany(
                "INSERT INTO alert_pending VALUES (?, ?, ?, ?, make_timestamp(?))",
                [[r, t, f, json.dumps(lab, sort_keys=True), int(s * 1e6)] for r, t, f, lab, s in entries],
            )

    def remove_pending(self, keys: list[tuple[str, str, str]]) -> None:
        """Delete pending entries by ``(rule_id, tenant_id, fingerprint)``."""
        if keys:
            self.store.cursor().executemany(
                "DELETE FROM alert_pending WHERE rule_id = ? AND tenant_id = ? AND fingerprint = ?",
                [list(k) for k in keys],
            )

    def remove_rule_pending(self, rule_id: str, tenant_id: str | None = None) -> None:
        """Delete a rule's pending entries (one tenant's, or every tenant's with ``tenant_id=None``)."""
        self.store.cursor().execute(
            "DELETE FROM alert_pending WHERE rule_id = ? AND (tenant_id = ? OR ? IS NULL)",
            [rule_id, tenant_id, tenant_id],
        )

    def clear_pending(self) -> None:
        self.store.cursor().execute("DELETE FROM alert_pending")

    def pending_seen(self) -> float | None:
        """The last evaluation round at which the stored pending entries were current (``None``: unknown)."""
        row = self.store.cursor().execute("SELECT max(seen_at) FROM alert_pending_seen").fetchone()
        return _seconds(row[0]) if row and row[0] is not None else None

    def set_pending_seen(self, now: float) -> None:
        self.store.cursor().execute("UPDATE alert_pending_seen SET seen_at = make_timestamp(?)", [int(now * 1e6)])
