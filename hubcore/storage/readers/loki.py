"""LogQL ``query_range`` against Loki as a pandas DataFrame.

    reader = LokiReader("http://loki:3100", tenant="acme")
    df = reader.query_range('{event_type="security"} | json | payload_threat_type="prompt_injection"',
                            start, end, limit=1000, direction="backward")

Log queries (``resultType: streams``): columns ``timestamp`` (``datetime64[ns, UTC]``, nanosecond
precision kept), ``line`` (str) and ``labels`` (dict: the stream's labels plus those the pipeline
extracted). Metric queries (``matrix``): ``timestamp``, ``value``, ``labels``. Sorted by time in the
requested direction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import httpx
import pandas as pd

from hubcore.storage.readers._http import QueryError, ResponseParseError, request_json

TimeLike = datetime | float | int | str


def _ns(value: TimeLike) -> str:
    if isinstance(value, datetime):
        return str(int(value.timestamp() * 1e9))
    if isinstance(value, int | float):
        return str(int(value * 1e9))
    return value


class LokiReader:
    def __init__(
        self,
        url: str,
        tenant: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be an http(s) URL, got {url!r}")
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self._client = httpx.Client(timeout=timeout, headers={"X-Scope-OrgID": tenant} if tenant else None)

    def __enter__(self) -> LokiReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def query_range(
        self,
        logql: str,
        start: TimeLike,
        end: TimeLike,
        limit: int = 1000,
        direction: Literal["forward", "backward"] = "backward",
        step: str | None = None,
    ) -> pd.DataFrame:
        if direction not in ("forward", "backward"):
            raise ValueError("direction must be 'forward' or 'backward'")
        params: dict[str, Any] = {
            "query": logql, "start": _ns(start), "end": _ns(end), "limit": str(limit), "direction": direction,
        }  # fmt: skip
        if step:
            params["step"] = step
        body = request_json(
            self._client,
            self.url + "/loki/api/v1/query_range",
            params,
            retries=self.retries,
            backoff=self.backoff,
            query=logql,
        )
        if not isinstance(body, dict) or body.get("status") != "success":
            raise QueryError(f"query failed: {body!r:.300}", query=logql)
        data = body.get("data") or {}
        return _frame(data, logql, ascending=direction == "forward")


def _frame(data: dict[str, Any], logql: str, *, ascending: bool) -> pd.DataFrame:
    rtype, result = data.get("resultType"), data.get("result") or []
    rows: list[dict[str, Any]] = []
    try:
        if rtype == "streams":
            for stream in result:
                labels = dict(stream.get("stream", {}))
                for entry in stream.get("values", []):
                    rows.append({"timestamp": int(entry[0]), "line": entry[1], "labels": labels})
            cols = ["timestamp", "line", "labels"]
        elif rtype == "matrix":
            for series in result:
                labels = dict(series.get("metric", {}))
                for t, v in series.get("values", []):
                    rows.append({"timestamp": int(float(t) * 1e9), "value": float(v), "labels": labels})
            cols = ["timestamp", "value", "labels"]
        else:
            raise ResponseParseError(f"unknown resultType {rtype!r}", query=logql)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ResponseParseError(f"malformed {rtype} result: {exc}", query=logql) from exc
    df = pd.DataFrame(rows, columns=cols)
    df["timestamp"] = pd.to_datetime(df["timestamp"].astype("int64"), unit="ns", utc=True)
    return df.sort_values("timestamp", ascending=ascending, kind="stable").reset_index(drop=True)
