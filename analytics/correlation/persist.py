"""Storage of correlations and incidents in the embedded DuckDB, and their export as OTel signals.

Tables ``correlations`` and ``incidents`` (tenant-scoped, created idempotently) live next to the hub's
own tables. Each *new* correlation is also exported: one log record (``event_name = "hub.correlation"``)
in ``logs``, one trace in ``spans`` (a root span plus one child per correlated event, all sharing a
trace id) and ``hub_correlations_total{type}``.

    >>> import tempfile
    >>> from hubcore.storage.embedded import EmbeddedStore
    >>> store = EmbeddedStore(tempfile.mkdtemp(), wal_fsync=False); store.start()
    >>> repo = CorrelationRepository(store); repo.create_tables()
    >>> repo.list_correlations("t1", None, None, None)
    []
    >>> store.shutdown()
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import msgspec
import pandas as pd
from prometheus_client import CollectorRegistry, Counter

from analytics.correlation.frame import SELECT_SQL
from analytics.correlation.model import Correlation, Incident, empty_impact
from analytics.correlation.timeutil import iso

DDL = (
    """CREATE TABLE IF NOT EXISTS correlations (
  tenant_id VARCHAR, id VARCHAR, type VARCHAR, start_ts TIMESTAMP, end_ts TIMESTAMP, confidence DOUBLE,
  modules VARCHAR, event_ids VARCHAR, root_event_id VARCHAR, explanation VARCHAR, impact VARCHAR,
  dimensions VARCHAR, incident_id VARCHAR, updated_at TIMESTAMP, evidence VARCHAR, PRIMARY KEY (tenant_id, id))""",
    # tables created before the evidence column (it is added last, so positional inserts match both)
    "ALTER TABLE correlations ADD COLUMN IF NOT EXISTS evidence VARCHAR",
    """CREATE TABLE IF NOT EXISTS incidents (
  tenant_id VARCHAR, id VARCHAR, start_ts TIMESTAMP, end_ts TIMESTAMP, confidence DOUBLE, title VARCHAR,
  types VARCHAR, correlation_ids VARCHAR, event_ids VARCHAR, impact VARCHAR, hypotheses VARCHAR,
  updated_at TIMESTAMP, PRIMARY KEY (tenant_id, id))""",
)
_enc = msgspec.json.encode
_dec = msgspec.json.decode
_COLS = "id, type, epoch_us(start_ts), epoch_us(end_ts), confidence, modules, event_ids, root_event_id, " \
        "explanation, impact, dimensions, incident_id, coalesce(evidence, '{}')"  # fmt: skip
_INCIDENT_COLS = (
    "id, epoch_us(start_ts), epoch_us(end_ts), confidence, title, types, correlation_ids, event_ids, impact"
)
#: what a stored row that cannot be read back raises (damaged JSON, a NULL, a value of the wrong type)
_UNREADABLE = (msgspec.DecodeError, TypeError, ValueError)
log = logging.getLogger(__name__)
T = TypeVar("T")


def _impact(raw: Any) -> dict[str, Any]:
    """A stored impact in :func:`empty_impact`'s shape: a field missing or of another type is its default, so
    that merging the impacts of read-back correlations never fails on an older or damaged row."""
    got = _dec(raw)
    if not isinstance(got, dict):
        raise ValueError("impact is not a JSON object")
    out = empty_impact()
    for section, fields in out.items():
        have = got.get(section)
        if not isinstance(have, dict):
            continue
        for key, default in fields.items():
            value = have.get(key)
            if default is None:
                ok = value is None or isinstance(value, str)
            elif isinstance(default, bool):
                ok = isinstance(value, bool)
            else:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
            if ok:
                fields[key] = value
    return out


def _correlation(tenant: str, r: tuple[Any, ...]) -> Correlation:
    """A row of ``_COLS`` as the engine holds it (raises one of ``_UNREADABLE`` when it cannot be read)."""
    return Correlation(str(r[0]), str(r[1]), tenant, _dec(r[6], type=list[str]), _dec(r[5], type=list[str]),
                       float(r[4]), str(r[8] or ""), int(r[2]), int(r[3]), _impact(r[9]), r[7],
                       _dec(r[10], type=dict[str, Any]), _dec(r[12], type=dict[str, Any]))  # fmt: skip


def _incident(tenant: str, r: tuple[Any, ...]) -> Incident:
    """A row of ``_INCIDENT_COLS`` (raises one of ``_UNREADABLE`` when it cannot be read)."""
    return Incident(str(r[0]), tenant, _dec(r[6], type=list[str]), _dec(r[5], type=list[str]),
                    _dec(r[7], type=list[str]), int(r[1]), int(r[2]), float(r[3]), str(r[4] or ""),
                    _impact(r[8]))  # fmt: skip


def _readable(rows: list[tuple[Any, ...]], read: Callable[[tuple[Any, ...]], T], what: str, tenant: str) -> list[T]:
    """``read`` of each of ``rows`` (stored rows whose first column is the id); a row it cannot read (one of
    ``_UNREADABLE``) is skipped and logged with its id, and stays stored as it is."""
    out: list[T] = []
    bad: list[str] = []
    for r in rows:
        try:
            out.append(read(r))
        except _UNREADABLE:
            bad.append(str(r[0]))
    if bad:
        log.warning("stored %s of tenant %r skipped, their rows cannot be read back: %s", what, tenant,
                    ", ".join(bad[:20]))  # fmt: skip
    return out


def _release_superseded(cur: Any, incidents: list[Incident]) -> None:
    """A correlation belongs to one incident, the one computed last. An incident's id follows its earliest
    root event, which changes as windows slide and correlations merge, so an incident saved earlier can
    still list a correlation now in another: take it out of the older one, and delete an incident left
    with none (it had shown as a stale duplicate, a subset of the current incident)."""
    by_tenant: dict[str, tuple[set[str], set[str]]] = {}
    for inc in incidents:
        ids, cids = by_tenant.setdefault(inc.tenant_id, (set(), set()))
        ids.add(inc.id)
        cids.update(inc.correlation_ids)
    for tenant, (ids, cids) in by_tenant.items():
        # (a row whose list is not a JSON array is left as it is: it had failed every later save of the tenant)
        stale = cur.execute(
            "SELECT id, correlation_ids FROM incidents WHERE tenant_id = ? AND NOT list_contains(?, id) "
            "AND CASE WHEN json_valid(correlation_ids) AND json_type(correlation_ids) = 'ARRAY' "
            "THEN list_has_any(from_json(correlation_ids, '[\"VARCHAR\"]'), ?) ELSE false END",
            [tenant, sorted(ids), sorted(cids)],
        ).fetchall()  # fmt: skip
        for inc_id, raw in stale:
            keep = [c for c in _dec(raw) if c not in cids]
            if keep:
                cur.execute("UPDATE incidents SET correlation_ids = ? WHERE tenant_id = ? AND id = ?",
                            [_enc(keep).decode(), tenant, inc_id])  # fmt: skip
            else:
                cur.execute("DELETE FROM incidents WHERE tenant_id = ? AND id = ?", [tenant, inc_id])


class StoreLike(Protocol):
    def cursor(self) -> Any: ...
    def read(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> Any: ...
    def append(self, kind: str, columns: dict[str, list[Any]]) -> int: ...


def _counter(registry: CollectorRegistry | None) -> Counter | None:
    if registry is None:
        return None
    try:
        return Counter("hub_correlations", "Correlations found, by correlation type", ["type"], registry=registry)
    except ValueError:  # already registered by another engine on this registry
        existing = getattr(registry, "_names_to_collectors", {}).get("hub_correlations_total")
        return existing if isinstance(existing, Counter) else None


class CorrelationRepository:
    """Reads and writes the two tables; all queries are parameterised and tenant-scoped."""

    def __init__(self, store: StoreLike, registry: CollectorRegistry | None = None, export: bool = True) -> None:
        self.store = store
        self.export = export
        self.counter = _counter(registry)

    def create_tables(self) -> None:
        cur = self.store.cursor()
        for ddl in DDL:
            cur.execute(ddl)

    # -- writes -------------------------------------------------------------------------------------
    def save(self, correlations: list[Correlation], incidents: list[Incident],
             hypotheses: dict[str, list[dict[str, Any]]], frame: pd.DataFrame | None = None, *,
             incident_of: dict[str, str] | None = None) -> list[Correlation]:  # fmt: skip
        """Upsert; returns the correlations that were new (and exports those).

        ``incident_of``: correlation id → its incident's id, for every current incident (``incidents`` may
        be only those that changed); each saved incident's correlations are pointed at it as well."""
        if not correlations and not incidents:
            return []
        cur = self.store.cursor()
        new: list[Correlation] = []
        now = int(time.time() * 1e6)
        inc_of = {**(incident_of or {}), **{cid: inc.id for inc in incidents for cid in inc.correlation_ids}}
        by_tenant: dict[str, list[Correlation]] = {}
        for c in correlations:
            by_tenant.setdefault(c.tenant_id, []).append(c)
        for tenant, items in by_tenant.items():
            ids = [c.id for c in items]
            known = {r[0] for r in cur.execute(
                "SELECT id FROM correlations WHERE tenant_id = ? AND list_contains(?, id)", [tenant, ids]).fetchall()}  # fmt: skip
            new.extend(c for c in items if c.id not in known)
        rows = [(c.tenant_id, c.id, c.type, c.start_us, c.end_us, c.confidence, _enc(c.modules).decode(),
                 _enc(c.event_ids).decode(), c.root_event_id, c.explanation, _enc(c.impact).decode(),
                 _enc(c.dimensions).decode(), inc_of.get(c.id), now, _enc(c.evidence).decode())
                for c in correlations]  # fmt: skip
        inc_rows = [(i.tenant_id, i.id, i.start_us, i.end_us, i.confidence, i.title, _enc(i.types).decode(),
                     _enc(i.correlation_ids).decode(), _enc(i.event_ids).decode(), _enc(i.impact).decode(),
                     _enc(hypotheses.get(i.id, [])).decode(), now) for i in incidents]  # fmt: skip
        cur.execute("BEGIN TRANSACTION")
        try:
            if rows:
                cur.executemany(
                    "INSERT OR REPLACE INTO correlations VALUES (?, ?, ?, make_timestamp(?), make_timestamp(?), ?, ?, ?, "
                    "?, ?, ?, ?, ?, make_timestamp(?), ?)", rows)  # fmt: skip
            if inc_rows:
                cur.executemany(
                    "INSERT OR REPLACE INTO incidents VALUES (?, ?, make_timestamp(?), make_timestamp(?), ?, ?, ?, ?, ?, "
                    "?, ?, make_timestamp(?))", inc_rows)  # fmt: skip
                _release_superseded(cur, incidents)
                cur.executemany(  # an unchanged correlation whose incident got a new id (or had none) follows it
                    "UPDATE correlations SET incident_id = ? WHERE tenant_id = ? AND list_contains(?, id) "
                    "AND incident_id IS DISTINCT FROM ?", [(i.id, i.tenant_id, i.correlation_ids, i.id) for i in incidents])  # fmt: skip
            cur.execute("COMMIT")
        except Exception:
            cur.execute("ROLLBACK")
            raise
        if self.export and new:
            self._export(new, frame)
        return new

    def _export(self, new: list[Correlation], frame: pd.DataFrame | None) -> None:
        if self.counter is not None:
            for c in new:
                self.counter.labels(type=c.type).inc()
        logs: dict[str, list[Any]] = {k: [] for k in ("tenant_id", "ts", "observed_ts", "service_name", "severity_number",
                                                    "severity_text", "body", "event_name", "trace_id", "span_id",
                                                    "scope_name", "attributes")}  # fmt: skip
        spans: dict[str, list[Any]] = {k: [] for k in ("tenant_id", "start_ts", "end_ts", "trace_id", "span_id",
                                                     "parent_span_id", "name", "kind", "duration_ms", "status_code",
                                                     "service_name", "event_id", "attributes", "source")}  # fmt: skip
        now = int(time.time() * 1e6)
        info = frame.set_index("event_id")[["ts", "source_module"]] if frame is not None and len(frame) else None
        for c in new:
            trace = hashlib.md5(f"{c.tenant_id}/correlation/{c.id}".encode()).hexdigest()
            root_span = trace[:16]
            attrs = {"correlation.id": c.id, "correlation.type": c.type, "correlation.confidence": c.confidence,
                     "correlation.modules": c.modules, "correlation.event_ids": c.event_ids[:100],
                     "correlation.root_event_id": c.root_event_id, "impact": c.impact}  # fmt: skip
            for k, v in (("tenant_id", c.tenant_id), ("ts", c.end_us), ("observed_ts", now),
                         ("service_name", "hub-correlation"), ("severity_number", 13), ("severity_text", "WARN"),
                         ("body", c.explanation), ("event_name", "hub.correlation"), ("trace_id", trace),
                         ("span_id", root_span), ("scope_name", "analytics.correlation"),
                         ("attributes", _enc(attrs).decode())):  # fmt: skip
                logs[k].append(v)
            rows: list[tuple[Any, ...]] = [
                (root_span, None, f"correlation {c.type}", c.start_us, c.end_us, "hub-correlation", None)
            ]
            for e in c.event_ids[:50]:
                ts, mod = (int(info.at[e, "ts"]), str(info.at[e, "source_module"])) if info is not None and e in info.index \
                    else (c.start_us, "unknown")  # fmt: skip
                rows.append(
                    (
                        hashlib.md5(f"{c.id}/{e}".encode()).hexdigest()[:16],
                        root_span,
                        "correlated event",
                        ts,
                        ts,
                        mod,
                        e,
                    )
                )
            for span_id, parent, name, start, end, service, event_id in rows:
                items: tuple[tuple[str, Any], ...] = (
                    ("tenant_id", c.tenant_id), ("start_ts", start), ("end_ts", end), ("trace_id", trace),
                    ("span_id", span_id), ("parent_span_id", parent), ("name", name), ("kind", "INTERNAL"),
                    ("duration_ms", (end - start) / 1000.0), ("status_code", "UNSET"), ("service_name", service),
                    ("event_id", event_id), ("source", "correlation"),
                    ("attributes", _enc({"correlation.id": c.id, "correlation.type": c.type}).decode()),
                )  # fmt: skip
                for k, v in items:
                    spans[k].append(v)
        self.store.append("logs", logs)
        self.store.append("spans", spans)

    # -- reads --------------------------------------------------------------------------------------
    def list_correlations(self, tenant: str, start_us: int | None, end_us: int | None, ctype: str | None,
                          limit: int = 1000) -> list[dict[str, Any]]:  # fmt: skip
        sql = f"SELECT {_COLS} FROM correlations WHERE tenant_id = ?"
        params: list[Any] = [tenant]
        if start_us is not None:
            sql += " AND end_ts >= make_timestamp(?)"
            params.append(start_us)
        if end_us is not None:
            sql += " AND start_ts < make_timestamp(?)"
            params.append(end_us)
        if ctype is not None:
            sql += " AND type = ?"
            params.append(ctype)
        sql += " ORDER BY start_ts DESC, id LIMIT ?"
        params.append(limit)
        return [_corr_row(tenant, r) for r in self.store.read(sql, params).fetchall()]

    def load_correlations(self, tenant: str, ids: list[str]) -> list[Correlation]:
        """The stored correlations among ``ids``, as the engine holds them (to continue one it no longer
        remembers, after a restart, instead of overwriting the stored row with only what it sees now)."""
        return [c for c, _ in self.load_correlations_owned(tenant, ids)]

    def load_correlations_owned(self, tenant: str, ids: list[str]) -> list[tuple[Correlation, str | None]]:
        """Like :meth:`load_correlations`, each with its stored incident's id. A row that cannot be read back
        is logged and skipped (it stays stored as it is)."""
        if not ids:
            return []
        rows = self.store.read(f"SELECT {_COLS} FROM correlations WHERE tenant_id = ? AND list_contains(?, id)",
                               [tenant, sorted(set(ids))]).fetchall()  # fmt: skip
        return _readable(rows, lambda r: (_correlation(tenant, r), None if r[11] is None else str(r[11])),
                         "correlations", tenant)  # fmt: skip

    def load_incidents(self, tenant: str, ids: list[str], since_us: int, until_us: int, limit: int) -> list[Incident]:
        """The stored incidents of ``tenant`` named in ``ids`` or overlapping ``[since_us, until_us]``, those
        named first, then the latest ending; at most ``limit``. A row that cannot be read back is logged and
        skipped (it stays stored as it is)."""
        named = sorted(set(ids))
        rows = self.store.read(
            f"SELECT {_INCIDENT_COLS} FROM incidents WHERE tenant_id = ? AND (list_contains(?::VARCHAR[], id) OR "
            "(end_ts >= make_timestamp(?) AND start_ts <= make_timestamp(?))) "
            "ORDER BY list_contains(?::VARCHAR[], id) DESC, end_ts DESC, id LIMIT ?",
            [tenant, named, since_us, until_us, named, limit]).fetchall()  # fmt: skip
        return _readable(rows, lambda r: _incident(tenant, r), "incidents", tenant)

    def load_events(self, tenant: str, event_ids: list[str], start_us: int, end_us: int) -> list[tuple[Any, ...]]:
        """Stored event rows (``SELECT_SQL``'s columns) of ``event_ids`` within ``[start_us, end_us]``."""
        if not event_ids:
            return []
        sql = SELECT_SQL.replace("ts < make_timestamp(?)", "ts <= make_timestamp(?) AND list_contains(?, event_id)")
        return list(self.store.read(sql, [tenant, start_us, end_us, sorted(set(event_ids)), len(event_ids)]).fetchall())

    def get_incident(self, tenant: str, incident_id: str) -> dict[str, Any] | None:
        rows = self.list_incidents(tenant, incident_id=incident_id)
        return rows[0] if rows else None

    def list_incidents(self, tenant: str, start_us: int | None = None, end_us: int | None = None,
                       limit: int = 500, incident_id: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        sql = ("SELECT id, epoch_us(start_ts), epoch_us(end_ts), confidence, title, types, correlation_ids, event_ids, "
               "impact FROM incidents WHERE tenant_id = ?")  # fmt: skip
        params: list[Any] = [tenant]
        if incident_id is not None:
            sql += " AND id = ?"
            params.append(incident_id)
        if start_us is not None:
            sql += " AND end_ts >= make_timestamp(?)"
            params.append(start_us)
        if end_us is not None:
            sql += " AND start_ts < make_timestamp(?)"
            params.append(end_us)
        sql += " ORDER BY start_ts DESC, id LIMIT ?"
        params.append(limit)
        out = []
        for r in self.store.read(sql, params).fetchall():
            out.append({"id": r[0], "tenant_id": tenant, "start": iso(r[1]), "end": iso(r[2]), "confidence": r[3],
                        "title": r[4], "types": _dec(r[5]), "correlation_ids": _dec(r[6]),
                        "event_count": len(_dec(r[7])), "impact": _dec(r[8])})  # fmt: skip
        return out

    def hypotheses(self, tenant: str, incident_id: str) -> list[dict[str, Any]] | None:
        row = self.store.read("SELECT hypotheses FROM incidents WHERE tenant_id = ? AND id = ?",
                              [tenant, incident_id]).fetchone()  # fmt: skip
        return None if row is None else list(_dec(row[0]))


def _corr_row(tenant: str, r: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": r[0], "type": r[1], "tenant_id": tenant, "start": iso(r[2]), "end": iso(r[3]), "confidence": r[4],
            "modules": _dec(r[5]), "event_ids": _dec(r[6]), "root_event_id": r[7], "explanation": r[8],
            "impact": _dec(r[9]), "dimensions": _dec(r[10]), "incident_id": r[11], "evidence": _dec(r[12])}  # fmt: skip
