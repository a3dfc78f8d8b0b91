"""The derived series and anomaly tables, in the same DuckDB as the events (created idempotently).

``derived_series``: one row per (tenant, time, series name, label set; a write replaces the row of the same
key, so a rescored bucket reads as its newest score) — ``anomaly_score``, ``yhat``,
``yhat_lower``, ``yhat_upper``, ``forecast_breach``, ``budget_exhaustion_timestamp_seconds``... with
``labels`` = the input series' labels + ``for`` (query alias) + ``model_alias`` as JSON.
``analytics_anomalies``: the anomalous points with their severity, confidence and explanation, for
``GET /api/v1/anomalies``.

    repo = DerivedRepository(store); repo.ensure()
    repo.write([DerivedRow("acme", 1_700_000_000.0, "anomaly_score", 0.4, {"for": "q", "model_alias": "m"}, "anomaly")])
    repo.read_series("acme", "anomaly_score", query="q")
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import pyarrow as pa

from hubcore.storage.embedded import EmbeddedStore

__all__ = ["AnomalyRecord", "DerivedRepository", "DerivedRow"]

DERIVED_SQL = """CREATE TABLE IF NOT EXISTS derived_series (
  tenant_id VARCHAR, ts TIMESTAMP, name VARCHAR, value DOUBLE, labels VARCHAR, model VARCHAR, created_at TIMESTAMP
)"""
ANOMALIES_SQL = """CREATE TABLE IF NOT EXISTS analytics_anomalies (
  id VARCHAR, tenant_id VARCHAR, query VARCHAR, model_alias VARCHAR, labels VARCHAR, ts TIMESTAMP, value DOUBLE,
  anomaly_score DOUBLE, severity VARCHAR, confidence DOUBLE, detected_by VARCHAR, yhat DOUBLE, yhat_lower DOUBLE,
  yhat_upper DOUBLE, explanation VARCHAR, is_alert BOOLEAN, created_at TIMESTAMP
)"""
_DERIVED_SCHEMA = pa.schema([("tenant_id", pa.string()), ("ts", pa.timestamp("us")), ("name", pa.string()),
                             ("value", pa.float64()), ("labels", pa.string()), ("model", pa.string()),
                             ("created_at", pa.timestamp("us"))])  # fmt: skip
#: Where a derived row lies in the order :meth:`DerivedRepository.read_series` reads them: (time in µs, name,
#: model, labels JSON; "" for a null model or labels). Rows can share one (a page skips those it has sent).
SeriesKey = tuple[int, str, str, str]
#: Where an anomaly lies in the order :meth:`DerivedRepository.list_anomalies_keyed` lists them, newest first:
#: (time in µs, id; one time's anomalies by id). A row's key never changes (the id is a digest of its point).
AnomalyKey = tuple[int, str]
#: Where each query's anomalies name a team (:meth:`DerivedRepository.list_anomalies_keyed`): (query alias or
#: None for every other query, the label names holding a team, whether the query's own filter names the team).
AnomalyTeamPlaces = Sequence[tuple[str | None, Sequence[str], bool]]
_ANOMALY_FIELDS = ("id", "tenant_id", "query", "model_alias", "labels", "ts", "value", "anomaly_score", "severity",
                   "confidence", "detected_by", "yhat", "yhat_lower", "yhat_upper", "explanation", "is_alert")  # fmt: skip


class DerivedRow(NamedTuple):
    """One derived sample; ``ts`` in epoch seconds; ``model`` = the model class (anomaly, forecast, budget)."""

    tenant_id: str
    ts: float
    name: str
    value: float
    labels: dict[str, str]
    model: str


class AnomalyRecord(NamedTuple):
    """One anomalous point (``anomaly_score > 1``) of a scored series."""

    id: str
    tenant_id: str
    query: str
    model_alias: str
    labels: dict[str, str]
    ts: float
    value: float
    anomaly_score: float
    severity: str
    confidence: float
    detected_by: tuple[str, ...]
    yhat: float
    yhat_lower: float
    yhat_upper: float
    explanation: str
    is_alert: bool


def _us(seconds: float) -> int:
    return round(seconds * 1e6)


def _finite(x: float) -> float | None:
    return x if x == x and x not in (float("inf"), float("-inf")) else None


class DerivedRepository:
    """Reads and writes the analytics tables through ``store.cursor()`` (thread-safe)."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self._ready = False
        self._lock = threading.Lock()

    def ensure(self) -> None:
        """Create the tables if they do not exist (idempotent)."""
        if self._ready:
            return
        with self._lock:
            cur = self.store.cursor()
            try:
                cur.execute(DERIVED_SQL)
                cur.execute(ANOMALIES_SQL)
            finally:
                cur.close()
            self._ready = True

    # -- derived series ------------------------------------------------------------------------------
    def write(self, rows: Sequence[DerivedRow]) -> int:
        """Write ``rows`` (NaN values are skipped); returns how many were written. A row replaces the stored
        one of the same tenant, time, name and labels (a bucket scored again reads as its newest score), and
        of several such rows in ``rows`` the last is kept.

        Most writes hold only new buckets: the stored rows are deleted only when some lie in the batch's time
        range under its names, and the batch is deduplicated only when it repeats a key (both checked in SQL).
        """
        self.ensure()
        keep = [r for r in rows if _finite(float(r.value)) is not None]
        if not keep:
            return 0
        now = _us(time.time())
        ts = [_us(r.ts) for r in keep]
        table = pa.Table.from_pydict(
            {"tenant_id": [r.tenant_id for r in keep], "ts": ts, "name": [r.name for r in keep],
             "value": [float(r.value) for r in keep],
             "labels": [json.dumps(r.labels, sort_keys=True) for r in keep], "model": [r.model for r in keep],
             "created_at": [now] * len(keep), "_i": list(range(len(keep)))},
            schema=_DERIVED_SCHEMA.append(pa.field("_i", pa.int64())),
        )  # fmt: skip
        # the time range and names bound the scans (DuckDB skips the row groups outside them)
        bounds = [min(ts), max(ts), sorted({r.name for r in keep})]
        in_range = ("d.ts BETWEEN make_timestamp(CAST(? AS BIGINT)) AND make_timestamp(CAST(? AS BIGINT)) "
                    "AND list_contains(?, d.name)")  # fmt: skip
        columns = "tenant_id, ts, name, value, labels, model, created_at"
        cur = self.store.cursor()
        try:
            cur.register("derived_batch", table)
            cur.execute("BEGIN")
            try:
                stored = cur.execute(f"SELECT 1 FROM derived_series AS d WHERE {in_range} LIMIT 1", bounds).fetchone()
                if stored is not None:
                    cur.execute(
                        f"DELETE FROM derived_series AS d WHERE {in_range} AND EXISTS (SELECT 1 FROM derived_batch AS b "
                        "WHERE b.ts = d.ts AND b.name = d.name AND b.tenant_id = d.tenant_id AND b.labels = d.labels)",
                        bounds,
                    )
                (repeats,) = cur.execute(
                    "SELECT count(*) - count(DISTINCT (tenant_id, ts, name, labels)) FROM derived_batch"
                ).fetchone() or (0,)
                if repeats:  # the last of a key's rows is kept
                    cur.execute(
                        f"INSERT INTO derived_series SELECT {columns} FROM derived_batch QUALIFY "
                        "row_number() OVER (PARTITION BY tenant_id, ts, name, labels ORDER BY _i DESC) = 1"
                    )
                else:
                    cur.execute(f"INSERT INTO derived_series SELECT {columns} FROM derived_batch")
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise
            cur.unregister("derived_batch")
            return len(keep) - int(repeats)
        finally:
            cur.close()

    def delete(self, tenant: str, *, query: str, model_alias: str, names: Sequence[str], since_s: float | None = None,
               labels: str | None = None) -> None:  # fmt: skip
        """Delete a model's rows for one query (from ``since_s`` on; of one label set's JSON if given)."""
        self.ensure()
        sql = ("DELETE FROM derived_series WHERE tenant_id = ? AND json_extract_string(labels, '$.for') = ? "
               "AND json_extract_string(labels, '$.model_alias') = ? AND list_contains(?, name)")  # fmt: skip
        params: list[Any] = [tenant, query, model_alias, list(names)]
        if since_s is not None:
            sql += " AND ts >= make_timestamp(CAST(? AS BIGINT))"
            params.append(_us(since_s))
        if labels is not None:
            sql += " AND labels = ?"
            params.append(labels)
        self._exec(sql, params)

    def delete_named(self, tenant: str, name: str, label: str, value: str) -> None:
        """Delete every row of series ``name`` whose ``label`` is ``value`` (e.g. one budget's series)."""
        self.ensure()
        self._exec("DELETE FROM derived_series WHERE tenant_id = ? AND name = ? AND json_extract_string(labels, ?) = ?",
                   [tenant, name, f"$.{label}", value])  # fmt: skip

    def last_ts(self, tenant: str, query: str, model_alias: str) -> float | None:
        """Newest written sample time (epoch s) of a model on a query, or None."""
        self.ensure()
        row = self.store.read(
            "SELECT max(epoch_us(ts)) FROM derived_series WHERE tenant_id = ? AND json_extract_string(labels, '$.for') = ? "
            "AND json_extract_string(labels, '$.model_alias') = ? AND name = 'anomaly_score'",
            [tenant, query, model_alias],
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0]) / 1e6

    def read_series(self, tenant: str, name: str | None = None, *, query: str | None = None,
                    model_alias: str | None = None, start_s: float | None = None,
                    end_s: float | None = None, limit: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Rows as dicts (``ts`` in epoch seconds, ``labels`` decoded), oldest first; at most ``limit``."""
        return [row for _, row in self.read_series_keyed(tenant, name, query=query, model_alias=model_alias,
                                                          start_s=start_s, end_s=end_s, limit=limit)]  # fmt: skip

    def read_series_keyed(self, tenant: str, name: str | None = None, *, query: str | None = None,
                          model_alias: str | None = None, start_s: float | None = None, end_s: float | None = None,
                          limit: int | None = None, after: SeriesKey | None = None,
                          ) -> list[tuple[SeriesKey, dict[str, Any]]]:  # fmt: skip
        """:meth:`read_series` with each row's :data:`SeriesKey` (its place in the order of the rows: time,
        then name, model and labels), from the key ``after`` on (the rows of that key included: a caller
        paging on skips those it has)."""
        self.ensure()
        sql = ("SELECT epoch_us(ts), name, value, labels, model, coalesce(model, ''), coalesce(labels, '') "
               "FROM derived_series WHERE tenant_id = ?")  # fmt: skip
        params: list[Any] = [tenant]
        for cond, val in (("name = ?", name), ("json_extract_string(labels, '$.for') = ?", query),
                          ("json_extract_string(labels, '$.model_alias') = ?", model_alias)):  # fmt: skip
            if val is not None:
                sql += f" AND {cond}"
                params.append(val)
        if start_s is not None:
            sql += " AND ts >= make_timestamp(CAST(? AS BIGINT))"
            params.append(_us(start_s))
        if end_s is not None:
            sql += " AND ts < make_timestamp(CAST(? AS BIGINT))"
            params.append(_us(end_s))
        if after is not None:
            sql += (" AND (epoch_us(ts), name, coalesce(model, ''), coalesce(labels, '')) >= "
                    "(CAST(? AS BIGINT), ?, ?, ?)")  # fmt: skip
            params.extend(after)
        sql += " ORDER BY ts, name, coalesce(model, ''), coalesce(labels, ''), value"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        rows = self.store.read(sql, params).fetchall()
        return [
            ((r[0], r[1], r[5], r[6]),
             {"ts": r[0] / 1e6, "name": r[1], "value": r[2], "labels": json.loads(r[3]), "model": r[4]})
            for r in rows
        ]  # fmt: skip

    # -- anomalies -----------------------------------------------------------------------------------
    def replace_anomalies(self, tenant: str, query: str, model_alias: str, start_s: float,
                          records: Sequence[AnomalyRecord]) -> None:  # fmt: skip
        """Replace a model's anomalies on one query from ``start_s`` on with ``records``."""
        self.ensure()
        cur = self.store.cursor()
        try:
            cur.execute("BEGIN")
            cur.execute("DELETE FROM analytics_anomalies WHERE tenant_id = ? AND query = ? AND model_alias = ? "
                        "AND ts >= make_timestamp(CAST(? AS BIGINT))", [tenant, query, model_alias, _us(start_s)])  # fmt: skip
            if records:
                now = _us(time.time())
                cols: dict[str, list[Any]] = {f: [] for f in _ANOMALY_FIELDS}
                for r in records:
                    for f in _ANOMALY_FIELDS:
                        v = getattr(r, f)
                        if f == "labels":
                            v = json.dumps(v, sort_keys=True)
                        elif f == "detected_by":
                            v = ",".join(v)
                        elif f == "ts":
                            v = _us(v)
                        elif isinstance(v, float):
                            v = _finite(v)
                        cols[f].append(v)
                cols["created_at"] = [now] * len(records)
                table = pa.Table.from_pydict(cols)
                table = table.set_column(table.schema.get_field_index("ts"), "ts",
                                         table.column("ts").cast(pa.timestamp("us")))  # fmt: skip
                table = table.set_column(table.schema.get_field_index("created_at"), "created_at",
                                         table.column("created_at").cast(pa.timestamp("us")))  # fmt: skip
                cur.register("anomaly_batch", table)
                cur.execute(f"INSERT INTO analytics_anomalies SELECT {', '.join(_ANOMALY_FIELDS)}, created_at "
                            "FROM anomaly_batch")  # fmt: skip
                cur.unregister("anomaly_batch")
            cur.execute("COMMIT")
        except Exception:
            cur.execute("ROLLBACK")
            raise
        finally:
            cur.close()

    def list_anomalies(self, tenant: str, *, start_s: float, end_s: float, query: str | None = None,
                       min_severity: Sequence[str] | None = None, limit: int = 1000,
                       alerts_only: bool = False) -> list[dict[str, Any]]:  # fmt: skip
        """Anomalies of ``tenant`` in ``[start_s, end_s)``, newest first, as API dicts (``alerts_only``: only
        the points that announced an event, ``is_alert``); at most ``limit``."""
        keyed = self.list_anomalies_keyed(tenant, start_s=start_s, end_s=end_s, query=query,
                                          min_severity=min_severity, limit=limit, alerts_only=alerts_only)  # fmt: skip
        # one time's anomalies the highest score first (null: too large for JSON, the highest)
        keyed.sort(key=lambda kr: (-kr[0][0], -(kr[1]["anomaly_score"] if kr[1]["anomaly_score"] is not None
                                                 else float("inf"))))  # fmt: skip
        return [row for _, row in keyed]

    def list_anomalies_keyed(self, tenant: str, *, start_s: float, end_s: float, query: str | None = None,
                             min_severity: Sequence[str] | None = None, limit: int = 1000, alerts_only: bool = False,
                             after: AnomalyKey | None = None, team: str | None = None,
                             team_places: AnomalyTeamPlaces = (),
                             ) -> list[tuple[AnomalyKey, dict[str, Any]]]:  # fmt: skip
        """:meth:`list_anomalies` with each row's :data:`AnomalyKey`, in the order of the keys (newest first;
        one time's rows by id), from after the key ``after`` on (a page resumed: the rows of a listing never
        move in that order, whatever is rescored or added meanwhile). ``team``: only the anomalies of that
        team's series, found where ``team_places`` says each query keeps its team (``(alias, label names,
        the query's own team filter names the team)``; alias None: every query not listed)."""
        self.ensure()
        sql = (f"SELECT {', '.join(_ANOMALY_FIELDS[:5])}, epoch_us(ts), {', '.join(_ANOMALY_FIELDS[6:])} "
               "FROM analytics_anomalies WHERE tenant_id = ? AND ts >= make_timestamp(CAST(? AS BIGINT)) "
               "AND ts < make_timestamp(CAST(? AS BIGINT))")  # fmt: skip
        params: list[Any] = [tenant, _us(start_s), _us(end_s)]
        if query is not None:
            sql += " AND query = ?"
            params.append(query)
        if min_severity:
            sql += " AND list_contains(?, severity)"
            params.append(list(min_severity))
        if alerts_only:
            sql += " AND is_alert"
        if team is not None:
            cond, cond_params = _team_condition(team, team_places)
            sql += f" AND {cond}"
            params.extend(cond_params)
        if after is not None:
            sql += " AND (epoch_us(ts) < ? OR (epoch_us(ts) = ? AND id > ?))"
            params.extend([after[0], after[0], after[1]])
        sql += " ORDER BY ts DESC, id LIMIT ?"
        params.append(int(limit))
        return [((r[5], r[0]), _anomaly_dict(r)) for r in self.store.read(sql, params).fetchall()]

    def get_anomaly(self, tenant: str, anomaly_id: str) -> dict[str, Any] | None:
        self.ensure()
        rows = self.store.read(
            f"SELECT {', '.join(_ANOMALY_FIELDS[:5])}, epoch_us(ts), {', '.join(_ANOMALY_FIELDS[6:])} "
            "FROM analytics_anomalies WHERE tenant_id = ? AND id = ? LIMIT 1", [tenant, anomaly_id],
        ).fetchall()  # fmt: skip
        return _anomaly_dict(rows[0]) if rows else None

    # -- retention -----------------------------------------------------------------------------------
    def prune(self, older_than_s: float) -> None:
        """Delete derived rows and anomalies older than ``older_than_s`` (epoch s)."""
        self.ensure()
        for table in ("derived_series", "analytics_anomalies"):
            self._exec(f"DELETE FROM {table} WHERE ts < make_timestamp(CAST(? AS BIGINT))", [_us(older_than_s)])

    def _exec(self, sql: str, params: list[Any]) -> None:
        cur = self.store.cursor()
        try:
            cur.execute(sql, params)
        finally:
            cur.close()


def _anomaly_dict(r: tuple[Any, ...]) -> dict[str, Any]:
    (aid, tenant, query, model_alias, labels, ts_us, value, score, severity, confidence, detected_by, yhat, lower,
     upper, explanation, is_alert) = r  # fmt: skip
    from datetime import UTC, datetime

    return {
        "id": aid, "tenant_id": tenant, "query": query, "model_alias": model_alias, "labels": json.loads(labels),
        "timestamp": datetime.fromtimestamp(ts_us / 1e6, UTC).isoformat().replace("+00:00", "Z"),
        "value": value, "anomaly_score": score, "severity": severity, "confidence": confidence,
        "detected_by": [d for d in (detected_by or "").split(",") if d], "expected_range": [lower, upper],
        "yhat": yhat, "explanation": explanation, "is_alert": bool(is_alert),
    }  # fmt: skip


def _team_condition(team: str, places: AnomalyTeamPlaces) -> tuple[str, list[Any]]:
    """The SQL condition (and its parameters) that keeps the anomalies of ``team``'s series (see
    :meth:`DerivedRepository.list_anomalies_keyed`); ``false`` when no query can hold one."""
    listed = [alias for alias, _, _ in places if alias is not None]
    conds: list[str] = []
    params: list[Any] = []
    for alias, labels, filtered in places:
        head, head_params = ("query = ?", [alias]) if alias is not None else ("NOT list_contains(?, query)", [listed])
        if filtered:  # every series of the query is that team's
            conds.append(head)
            params.extend(head_params)
            continue
        names = [n for n in labels if '"' not in n]  # (a label name with a quote cannot be a JSON path here)
        if names:
            conds.append(f"({head} AND ({' OR '.join(['json_extract_string(labels, ?) = ?'] * len(names))}))")
            params.extend(head_params)
            for name in names:
                params.extend([f'$."{name}"', team])
    return (f"({' OR '.join(conds)})" if conds else "false"), params
