"""PromQL/MetricsQL against VictoriaMetrics (or Prometheus) as pandas DataFrames.

    reader = PromReader("http://127.0.0.1:8428", timeout=10, retries=3)
    df = reader.query_range('sum by (job) (rate(llm_cost_usd_total[5m]))', start, end, step="60s")

Result: one row per sample, **wide labels**: columns ``timestamp`` (``datetime64[ns, UTC]``), ``value``
(float; ``NaN``/``±Inf`` as sent), then one column per label name found in the result (``__name__``
included when present), ``None`` where a series lacks that label. An empty result is an empty frame with
``timestamp`` and ``value``. ``start``/``end`` accept datetimes, epoch seconds or RFC 3339 strings;
``step`` seconds or a duration string (``"1m"``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pandas as pd

from hubcore.storage.readers._http import QueryError, ResponseParseError, request_json

TimeLike = datetime | float | int | str


def _ts(value: TimeLike) -> str:
    if isinstance(value, datetime):
        return f"{value.timestamp():.3f}"
    if isinstance(value, int | float):
        return f"{float(value):.3f}"
    return value


class PromReader:
    """Thread-safe (one pooled ``httpx.Client``). Call :meth:`close` (or use ``with``) when done."""

    def __init__(
        self,
        url: str,
        timeout: float = 30.0,
        retries: int = 3,
        *,
        backoff: float = 0.2,
        headers: dict[str, str] | None = None,
        api_prefix: str = "",
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be an http(s) URL, got {url!r}")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.url = url.rstrip("/") + api_prefix  # cluster vmselect: api_prefix="/select/0/prometheus"
        self.retries = retries
        self.backoff = backoff
        self._client = httpx.Client(timeout=timeout, headers=headers)

    def __enter__(self) -> PromReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | str) -> pd.DataFrame:
        params = {"query": query, "start": _ts(start), "end": _ts(end), "step": str(step)}
        data = self._call("/api/v1/query_range", params, query)
        return _frame(data, query)

    def query(self, query: str, time: TimeLike | None = None) -> pd.DataFrame:
        """Instant query; scalars/strings come back as one row without labels."""
        params: dict[str, Any] = {"query": query}
        if time is not None:
            params["time"] = _ts(time)
        data = self._call("/api/v1/query", params, query)
        return _frame(data, query)

    def _call(self, path: str, params: dict[str, Any], query: str) -> dict[str, Any]:
        body = request_json(
            self._client, self.url + path, params, retries=self.retries, backoff=self.backoff, query=query
        )
        if not isinstance(body, dict) or body.get("status") != "success":
            err = body.get("error") if isinstance(body, dict) else body
            raise QueryError(f"query failed: {err}", query=query)
        data = body.get("data")
        if not isinstance(data, dict):
            raise ResponseParseError("response has no data object", query=query)
        return data


def _frame(data: dict[str, Any], query: str) -> pd.DataFrame:
    rtype, result = data.get("resultType"), data.get("result")
    result_any: Any = result
    rows: list[dict[str, Any]] = []
    try:
        if rtype == "matrix":
            for series in result or []:
                labels = series.get("metric", {})
                for t, v in series.get("values", []):
                    rows.append({"timestamp": float(t), "value": float(v), **labels})
        elif rtype == "vector":
            for series in result or []:
                t, v = series["value"]
                rows.append({"timestamp": float(t), "value": float(v), **series.get("metric", {})})
        elif rtype in ("scalar", "string"):
            t, v = result_any
            rows.append({"timestamp": float(t), "value": float(v) if rtype == "scalar" else v})
        else:
            raise ResponseParseError(f"unknown resultType {rtype!r}", query=query)
    except (KeyError, TypeError, ValueError) as exc:
        raise ResponseParseError(f"malformed {rtype} result: {exc}", query=query) from exc
    if not rows:
        return pd.DataFrame(
            {"timestamp": pd.Series([], dtype="datetime64[ns, UTC]"), "value": pd.Series([], dtype=float)}
        )
    df = pd.DataFrame(rows)
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="s", utc=True)
    df = df.astype({c: object for c in df.columns if c not in ("timestamp", "value")})
    return df.where(df.notna(), None) if len(df.columns) > 2 else df
