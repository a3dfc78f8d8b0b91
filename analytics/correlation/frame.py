"""Event rows → one pandas frame with the derived fields every detector uses.

Input is the ``events`` table's columns (the dicts the pipeline writes, or rows read back with SQL).
Derived columns: ``slow`` / ``cost_outlier`` (see :func:`mark_outliers`), ``component`` (``tags.service`` or the source module), ``error_type``, ``source_ip``,
``api_key_id`` (from the payload, parsed only where needed), ``abnormal`` and ``signal``
(a short label such as ``telemetry:error:timeout`` or ``policy:fail:pol-rate-limit``).

    >>> df = build_frame({"event_id": ["a"], "ts": [1_000_000], "source_module": ["llm-observatory"],
    ...                   "event_type": ["telemetry"], "status": ["error"], "name": ["x"],
    ...                   "payload": ['{"error_type": "timeout"}']})
    >>> df.loc[0, "signal"], bool(df.loc[0, "abnormal"])
    ('telemetry:error:timeout', True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec
import numpy as np
import pandas as pd

COLUMNS: Final = (
    "event_id", "ts", "source_module", "event_type", "severity", "correlation_id", "name", "value", "unit",
    "status", "model", "provider", "asset_id", "team", "project", "user_id", "input_tokens", "output_tokens",
    "tags", "payload",
)  # fmt: skip
SELECT_SQL: Final = (
    "SELECT event_id, epoch_us(ts) AS ts, source_module, event_type, severity, correlation_id, name, value, unit, "
    "status, model, provider, asset_id, team, project, user_id, input_tokens, output_tokens, tags, payload "
    "FROM events WHERE tenant_id = ? AND ts >= make_timestamp(?) AND ts < make_timestamp(?) ORDER BY ts LIMIT ?"
)
#: Dimensions two events may share (for grouping anomalies and joining cost to operations).
DIMENSIONS: Final = ("model", "project", "team", "user_id", "asset_id", "component")
_SEV_RANK: Final = {"debug": 0, "info": 1, "warning": 2, "error": 3, "critical": 4}
_decode = msgspec.json.Decoder(dict[str, Any]).decode


def _obj(text: Any) -> dict[str, Any]:
    if not text or not isinstance(text, str):
        return {}
    try:
        return _decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return {}


def _column(values: Sequence[Any]) -> Sequence[Any]:
    return values if isinstance(values, list | np.ndarray) else list(values)


def build_frame(columns: Mapping[str, Sequence[Any]], *, outliers: bool = True) -> pd.DataFrame:
    """A frame with :data:`COLUMNS` plus the derived ones; missing input columns become nulls.

    ``outliers=False`` leaves ``slow`` / ``cost_outlier`` False (call :func:`mark_outliers` later)."""
    n = len(columns.get("event_id", ()))
    # lists and arrays go to pandas as they are (it copies them); other sequences are listed first
    data = {c: _column(columns[c]) if c in columns else [None] * n for c in COLUMNS}
    df = pd.DataFrame(data)
    if n == 0:
        for extra in ("component", "error_type", "source_ip", "api_key_id", "signal"):
            df[extra] = pd.Series(dtype=object)
        df["abnormal"] = pd.Series(dtype=bool)
        df["sev_rank"] = pd.Series(dtype=np.int64)
        df["slow"] = pd.Series(dtype=bool)
        df["cost_outlier"] = pd.Series(dtype=bool)
        return df
    df["ts"] = pd.to_numeric(df["ts"], errors="coerce").fillna(0).astype(np.int64)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    for col in ("source_module", "event_type", "severity", "name", "status", "unit"):
        df[col] = df[col].fillna("").astype(str)
    df["sev_rank"] = df["severity"].map(_SEV_RANK).fillna(1).astype(np.int64)
    et = df["event_type"]
    st = df["status"]
    abnormal = (
        ((et == "telemetry") & ((st == "error") | (df["sev_rank"] >= 2)))
        | (et == "security")
        | ((et == "governance") & (st == "violation"))
        | ((et == "policy") & st.isin(("fail", "warn")))
        | ((et == "metadata") & st.isin(("updated", "deprecated", "deleted")))
        | (df["sev_rank"] >= 3)
    )
    df["abnormal"] = abnormal.to_numpy()
    # tags.service names a component inside a module (api-gateway, vector-db ...); parse tags only if used
    tags = df["tags"].fillna("")
    has_service = tags.str.contains('"service"', regex=False)
    component = df["source_module"].copy()
    if has_service.any():
        component[has_service] = [_obj(t).get("service") or m for t, m in
                                  zip(tags[has_service], df["source_module"][has_service], strict=True)]  # fmt: skip
    df["component"] = component
    need = abnormal | (et == "security")
    err: list[Any] = [None] * n
    ip: list[Any] = [None] * n
    key: list[Any] = [None] * n
    payloads = df["payload"].to_numpy()
    for i in np.flatnonzero(need.to_numpy()):
        p = _obj(payloads[i])
        err[i] = p.get("error_type")
        ip[i] = p.get("source_ip")
        key[i] = p.get("api_key_id")
    df["error_type"] = err
    df["source_ip"] = ip
    df["api_key_id"] = key
    df["signal"] = _signals(df)
    if outliers:
        mark_outliers(df)
    else:
        df["slow"] = np.zeros(n, dtype=bool)
        df["cost_outlier"] = np.zeros(n, dtype=bool)
    return df


def _signals(df: pd.DataFrame) -> np.ndarray:
    et, st, name = df["event_type"], df["status"], df["name"]
    detail = df["error_type"].fillna(name).astype(str)
    return np.select(
        [
            (et == "telemetry") & (st == "error"), et == "telemetry", et == "security",
            et.isin(("policy", "governance")), et == "metadata",
        ],
        [
            "telemetry:error:" + detail, "telemetry:" + df["component"].astype(str) + ":" + name,
            "security:" + name, et + ":" + st + ":" + name, "metadata:" + st,
        ],
        default=et + ":" + name,
    )  # fmt: skip


def latency_mask(df: pd.DataFrame) -> np.ndarray:
    """Telemetry rows whose value is a duration in milliseconds."""
    return ((df["event_type"] == "telemetry") & (df["unit"] == "ms") & df["value"].notna()).to_numpy()


Baselines = dict[str, tuple[float, float]]
_SEP = "\x1f"


def _group_frame(df: pd.DataFrame, mask: np.ndarray, keys: list[str]) -> pd.DataFrame:
    """Per masked row: its group key (joined ``keys``), log value, group median, lower-half MAD, size."""
    key = df.loc[mask, keys[0]].fillna("").astype(str)
    for k in keys[1:]:
        key = key + _SEP + df.loc[mask, k].fillna("").astype(str)
    lv = np.log(np.maximum(df.loc[mask, "value"].to_numpy(dtype=float), 1e-9))
    g = pd.DataFrame({"k": key.to_numpy(), "lv": lv})
    grp = g.groupby("k", sort=False)["lv"]
    g["med"] = grp.transform("median")
    # scale from the lower half only: an incident inflates the upper tail, not the lower one
    g["low"] = np.where(g["lv"] <= g["med"], g["med"] - g["lv"], np.nan)
    g["mad"] = g.groupby("k", sort=False)["low"].transform("median") * 1.4826
    g["n"] = grp.transform("size")
    return g


def group_log_stats(df: pd.DataFrame, mask: np.ndarray, keys: list[str]) -> Baselines:
    """(median, lower-half MAD) of log(value) per ``keys`` group (joined with \\x1f), groups of 8+."""
    if not mask.any():
        return {}
    g = _group_frame(df, mask, keys)
    first = g[g["n"] >= 8].drop_duplicates("k")
    return {str(k): (float(m), float(d)) for k, m, d in zip(first["k"], first["med"], first["mad"], strict=True)}


def robust_outliers(
    df: pd.DataFrame, mask: np.ndarray, keys: list[str], z: float = 4.0, baselines: Baselines | None = None,
) -> np.ndarray:  # fmt: skip
    """Rows of ``mask`` whose value is a high outlier within its ``keys`` group, in log space.

    Robust z of log(value) above ``z`` and at least 3x the median. The median / MAD come from
    ``baselines`` (learned over earlier windows, so a long incident does not hide itself) or else from
    the window (robust while the incident is a minority of the group); groups need 8 values.
    """
    out = np.zeros(len(df), dtype=bool)
    if not mask.any():
        return out
    g = _group_frame(df, mask, keys)
    med = np.where(g["n"] >= 8, g["med"], np.nan)
    mad = g["mad"].to_numpy(dtype=float)
    if baselines:
        bmed = g["k"].map({k: v[0] for k, v in baselines.items()}).to_numpy(dtype=float)
        bmad = g["k"].map({k: v[1] for k, v in baselines.items()}).to_numpy(dtype=float)
        known = ~np.isnan(bmed)
        med = np.where(known, bmed, med)
        mad = np.where(known, bmad, mad)
    lv = g["lv"].to_numpy()
    with np.errstate(invalid="ignore"):
        flag = ((lv - med) / np.maximum(np.nan_to_num(mad, nan=1.0), 0.05) > z) & (lv - med > np.log(3.0))
    out[np.flatnonzero(mask)] = np.nan_to_num(flag, nan=0).astype(bool)
    return out


LATENCY_KEYS: Final = ["component", "name", "model"]
COST_KEYS: Final = ["model", "name"]


def cost_mask(df: pd.DataFrame) -> np.ndarray:
    return ((df["event_type"] == "cost") & df["value"].notna()).to_numpy()


def slow_outliers(df: pd.DataFrame, z: float = 4.0, baselines: Baselines | None = None) -> np.ndarray:
    """Latency outliers per (component, metric, model)."""
    return robust_outliers(df, latency_mask(df), LATENCY_KEYS, z, baselines)


def cost_outliers(df: pd.DataFrame, z: float = 4.0, baselines: Baselines | None = None) -> np.ndarray:
    """Cost outliers per (model, cost type)."""
    return robust_outliers(df, cost_mask(df), COST_KEYS, z, baselines)


def mark_outliers(df: pd.DataFrame, latency: Baselines | None = None, cost: Baselines | None = None) -> None:
    """(Re)compute the ``slow`` and ``cost_outlier`` columns, with learned baselines if given."""
    df["slow"] = slow_outliers(df, baselines=latency) if len(df) else np.zeros(0, dtype=bool)
    df["cost_outlier"] = cost_outliers(df, baselines=cost) if len(df) else np.zeros(0, dtype=bool)


def rows_from_sql(rows: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
    if not rows:
        return {c: [] for c in COLUMNS}
    return {c: list(v) for c, v in zip(COLUMNS, zip(*rows, strict=True), strict=True)}
