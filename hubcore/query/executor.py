"""Run unified queries on a backend: timeouts, the result cache, metadata, metrics and streaming.

    >>> import tempfile
    >>> from hubcore.storage.embedded import EmbeddedStore
    >>> from hubcore.query.model import parse_query
    >>> store = EmbeddedStore(tempfile.mkdtemp(), wal_fsync=False); store.start()
    >>> ex = QueryExecutor(EmbeddedBackend(store), QueryCache())
    >>> q = parse_query({"time_range": {"last": "1h"}}, tenant="t1", now_us=10**15)
    >>> answer = ex.execute(q)
    >>> answer["data"], answer["metadata"]["backend"], answer["metadata"]["cached"]
    ([{'count': 0}], 'embedded', False)
    >>> ex.execute(q)["metadata"]["cached"]
    True
    >>> store.shutdown()

A backend is anything with ``name``, ``run(query, timeout_s)`` and ``stream(query, batch_rows)``
(:class:`QueryBackend`): :class:`EmbeddedBackend` (DuckDB), :class:`PromBackend` (VictoriaMetrics or
Prometheus through ``hubcore.storage.readers.PromReader``) and :class:`LokiBackend` (``LokiReader``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cmp_to_key
from typing import Any, Protocol

import duckdb
import pyarrow as pa
from prometheus_client import CollectorRegistry, Counter, Histogram

from hubcore.errors import HubError
from hubcore.query.cache import QueryCache
from hubcore.query.catalog import stored_name_probe, unknown_name_error
from hubcore.query.compile_duckdb import compile_export, compile_query, export_key
from hubcore.query.compile_logql import compile_logql
from hubcore.query.compile_promql import compile_promql
from hubcore.query.model import Query, QueryError
from hubcore.query.paging import compare_keys, next_page_cursor, row_key
from hubcore.storage.embedded import EmbeddedStore

DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 60.0


class QueryTimeout(HubError):
    """The query ran past its time limit and was interrupted (HTTP 504)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            f"the query was stopped after {timeout_s:g} s (its time limit); narrow the time range, "
            "use a larger time_bucket or fewer group_by fields, or raise timeout_ms"
        )
        self.timeout_s = timeout_s


@dataclass(slots=True)
class BackendResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    compiled_query: Any


@dataclass(slots=True)
class RowStream:
    """Output column names and an iterator of Arrow record batches with exactly those columns.

    ``truncated`` turns true when the stream stopped at its time limit (:meth:`EmbeddedBackend.stream_sql`)
    before the last row: the batches it gave are whole, the rows after them were not read.
    """

    columns: list[str]
    batches: Iterator[pa.RecordBatch]
    compiled_query: Any = None
    truncated: bool = False


class QueryBackend(Protocol):
    name: str

    def run(self, query: Query, *, timeout_s: float) -> BackendResult:
        """All rows of one page (``limit + 1`` so the caller can tell whether more exist), in the total order
        of :func:`~hubcore.query.compile_duckdb.export_key`, after ``query.after`` when it is set."""
        ...

    def stream(
        self,
        query: Query,
        *,
        batch_rows: int = 65_536,
        time_limit_s: float | None = None,
        after: list[Any] | None = None,
        received_by_us: int | None = None,
    ) -> RowStream:
        """Every row (``limit``, if set, caps the total), in batches, without holding them all; at most
        ``time_limit_s`` seconds where the backend holds a store cursor, resumed after the key ``after``
        (:func:`~hubcore.query.compile_duckdb.export_key`) where it can resume."""
        ...


class EmbeddedBackend:
    """The DuckDB store. Timeouts ``interrupt()`` the query's own cursor from a watchdog thread."""

    name = "embedded"

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store

    def check(self, query: Query, *, timeout_s: float) -> None:
        """A 422 for what only the store can tell is wrong: a misspelt composite given as a bare string
        (:func:`~hubcore.query.catalog.stored_name_probe`)."""
        probe = stored_name_probe(query)
        if probe is not None and not self.run_sql(*probe, timeout_s=timeout_s):
            raise unknown_name_error(query)

    def run(self, query: Query, *, timeout_s: float) -> BackendResult:
        self.check(query, timeout_s=timeout_s)
        compiled = compile_query(query)
        rows = self.run_sql(compiled.sql, compiled.params, timeout_s=timeout_s)
        return BackendResult(compiled.columns, rows, {"sql": compiled.sql, "params": compiled.params})

    def run_sql(self, sql: str, params: list[Any], *, timeout_s: float) -> list[tuple[Any, ...]]:
        cur = self.store.cursor()
        done = threading.Event()

        def watchdog() -> None:
            # DuckDB forgets an interrupt that arrives before the query starts: keep interrupting until done
            if done.wait(timeout_s):
                return
            while not done.is_set():
                cur.interrupt()
                done.wait(0.01)

        threading.Thread(target=watchdog, name="hub-query-watchdog", daemon=True).start()
        try:
            return cur.execute(sql, params).fetchall()
        except duckdb.InterruptException:
            raise QueryTimeout(timeout_s) from None
        except duckdb.InvalidInputException as exc:
            raise QueryError("filters", f"the store refused the query: {_first_line(exc)}") from None
        finally:
            done.set()
            cur.close()

    def stream(
        self,
        query: Query,
        *,
        batch_rows: int = 65_536,
        time_limit_s: float | None = None,
        after: list[Any] | None = None,
        received_by_us: int | None = None,
    ) -> RowStream:
        """Every row of ``query`` in the total order of an export (:func:`compile_export`; ``after`` and
        ``received_by_us`` resume one), at most ``time_limit_s`` seconds (:meth:`stream_sql`)."""
        self.check(query, timeout_s=time_limit_s or DEFAULT_TIMEOUT_S)
        compiled = compile_export(query, after=after, received_by_us=received_by_us)
        return self.stream_sql(
            compiled.sql, compiled.params, compiled.columns, batch_rows=batch_rows, time_limit_s=time_limit_s
        )

    def stream_sql(
        self,
        sql: str,
        params: list[Any],
        columns: list[str],
        *,
        batch_rows: int = 65_536,
        time_limit_s: float | None = None,
    ) -> RowStream:
        """Start the query now (errors surface here), then yield batches renamed to ``columns``.

        With ``time_limit_s`` the store's result is held at most that long: past it no further batch is
        read (the stream ends and :attr:`RowStream.truncated` is set), a read still running is interrupted,
        and a stream that waits on its client then (a client that stopped reading) has its result and
        cursor released at once, not when the client reads on or goes away. If the query cannot even start
        in time, :class:`QueryTimeout` is raised here, before any row.
        """
        held = _HeldResult(self.store.cursor())
        deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
        if deadline is not None:
            threading.Thread(target=held.release_at, args=(deadline,), name="hub-export-watchdog", daemon=True).start()
        with held.lock:
            if held.closed:  # the watchdog was first (a limit shorter than starting a thread)
                raise QueryTimeout(time_limit_s or 0.0)
            try:
                held.reader = held.cur.sql(sql, params=params).to_arrow_reader(batch_rows)
            except duckdb.InterruptException:
                held.close()
                raise QueryTimeout(time_limit_s or 0.0) from None
            except duckdb.InvalidInputException as exc:
                held.close()
                raise QueryError("filters", f"the store refused the query: {_first_line(exc)}") from None
            except BaseException:
                held.close()
                raise
        stream = RowStream(columns, iter(()), {"sql": sql, "params": params})

        def past_deadline() -> bool:
            return deadline is not None and time.monotonic() >= deadline

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                while True:
                    with held.lock:  # the watchdog releases the result only between reads
                        if held.closed or past_deadline():
                            stream.truncated = True
                            return
                        try:
                            batch = held.reader.read_next_batch()
                        except StopIteration:
                            return
                        except (OSError, duckdb.InterruptException):  # pyarrow surfaces the interrupt as OSError
                            if past_deadline():
                                stream.truncated = True
                                return
                            raise
                    # the batch is Arrow memory of its own: the client may take its time with it
                    yield pa.RecordBatch.from_arrays(batch.columns, names=columns)
            finally:
                with held.lock:
                    held.close()

        stream.batches = batches()
        return stream


class _HeldResult:
    """The store cursor and Arrow reader of one streamed query. The reader holds the query's result (a
    sorted or aggregated one, all of it) and a transaction until it is closed — closing the cursor alone
    frees nothing — so both are closed together, once, under :attr:`lock` (held by each read)."""

    def __init__(self, cur: Any) -> None:
        self.cur = cur
        self.reader: Any = None
        self.lock = threading.Lock()
        self.closed = False
        self._done = threading.Event()

    def close(self) -> None:
        """Release the result and the cursor (the caller holds :attr:`lock`); the watchdog stops."""
        if self.closed:
            return
        self.closed = True
        self._done.set()
        try:
            if self.reader is not None:
                self.reader.close()
        finally:
            self.cur.close()

    def release_at(self, deadline: float) -> None:
        """The watchdog: at ``deadline``, release the result as soon as no read is running, interrupting the
        read (or the query's start) that is (DuckDB forgets an interrupt that arrives before it starts
        working, so keep at it). A stream waiting on its client holds no lock: it is released at once."""
        if self._done.wait(max(0.0, deadline - time.monotonic())):
            return
        while not self._done.is_set():
            if self.lock.acquire(blocking=False):
                try:
                    self.close()
                finally:
                    self.lock.release()
                return
            self.cur.interrupt()
            self._done.wait(0.01)


class _SeriesBackend:
    """Shared by the stack backends: one request per output column, merged into rows keyed by bucket and
    group labels. A sample at ``t`` of a range query covers ``(t - step, t]``: its row's ``bucket`` is
    ``t - step``. Sorting and paging happen here; the reader's own timeout bounds each request."""

    name = "series"
    language = ""

    def __init__(self, reader: Any) -> None:
        self.reader = reader

    def _plan(self, query: Query) -> Any:
        raise NotImplementedError

    def _fetch(self, expr: str, plan: Any) -> list[tuple[datetime, float, dict[str, Any]]]:
        raise NotImplementedError

    def run(self, query: Query, *, timeout_s: float) -> BackendResult:
        plan = self._plan(query)
        step = plan.step_s
        merged: dict[tuple[Any, ...], dict[str, Any]] = {}
        for column, expr in plan.queries.items():
            for ts, value, labels in self._fetch(expr, plan):
                bucket = ts.replace(tzinfo=None) - timedelta(seconds=step) if step else None
                key = (bucket, *(labels.get(label) for label in plan.group_labels))
                merged.setdefault(key, {})[column] = None if math.isnan(value) else value
        columns = query.output_columns
        rows = [
            (*((k[0],) if step else ()), *k[1:], *(v.get(c) for c in query.value_columns)) for k, v in merged.items()
        ]
        # the total order of the embedded backend's pages (sort, then bucket and groups; NULLs last)
        order = export_key(query)
        keyed = [(row_key(query, columns, r), r) for r in rows]

        def by_key(a: tuple[list[Any], Any], b: tuple[list[Any], Any]) -> int:
            return compare_keys(order, a[0], b[0])

        keyed.sort(key=cmp_to_key(by_key))
        start = query.offset
        if query.after is not None:  # a later page: right after the last row of the page before
            after = list(query.after)
            keyed = [(k, r) for k, r in keyed if compare_keys(order, k, after) > 0]
            start = 0
        end = None if query.limit is None else start + query.limit + 1
        page = [r for _, r in keyed[start:end]]
        return BackendResult(columns, page, {self.language: plan.queries, "step_s": step})

    def stream(
        self,
        query: Query,
        *,
        batch_rows: int = 65_536,
        time_limit_s: float | None = None,
        after: list[Any] | None = None,
        received_by_us: int | None = None,
    ) -> RowStream:
        """The whole result, read at once (each request bounded by the reader's own timeout): it is never
        cut short, so it never needs resuming."""
        if after is not None:
            raise QueryError("cursor", f"the {self.name} backend sends whole exports; there is nothing to resume")
        result = self.run(query, timeout_s=MAX_TIMEOUT_S)
        table = pa.Table.from_pylist([dict(zip(result.columns, r, strict=True)) for r in result.rows])
        return RowStream(result.columns, iter(table.to_batches(batch_rows)), result.compiled_query)


class PromBackend(_SeriesBackend):
    """VictoriaMetrics/Prometheus through a ``PromReader`` (``query``/``query_range``); compiles with
    :func:`~hubcore.query.compile_promql.compile_promql` (422 for what the metric contract cannot express)."""

    name = "victoriametrics"
    language = "promql"

    def _plan(self, query: Query) -> Any:
        return compile_promql(query)

    def _fetch(self, expr: str, plan: Any) -> list[tuple[datetime, float, dict[str, Any]]]:
        if plan.step_s:
            first = (int(plan.start_s) // plan.step_s + 1) * plan.step_s
            frame = self.reader.query_range(expr, first, plan.end_s, plan.step_s)
        else:
            frame = self.reader.query(expr, time=plan.end_s)
        return [(r["timestamp"].to_pydatetime(), float(r["value"]), r) for r in frame.to_dict("records")]


class LokiBackend(_SeriesBackend):
    """Loki through a ``LokiReader`` (metric queries of ``query_range``); compiles with
    :func:`~hubcore.query.compile_logql.compile_logql` — raw-event counts and unwrapped payload values."""

    name = "loki"
    language = "logql"

    def _plan(self, query: Query) -> Any:
        return compile_logql(query)

    def _fetch(self, expr: str, plan: Any) -> list[tuple[datetime, float, dict[str, Any]]]:
        if plan.step_s:
            first = (int(plan.start_s) // plan.step_s + 1) * plan.step_s
            frame = self.reader.query_range(expr, first, plan.end_s, direction="forward", step=f"{plan.step_s}s")
        else:
            window = f"{max(1, int(plan.end_s - plan.start_s))}s"
            frame = self.reader.query_range(expr, plan.end_s, plan.end_s, direction="forward", step=window)
        return [(r["timestamp"].to_pydatetime(), float(r["value"]), r["labels"]) for r in frame.to_dict("records")]


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300]


class QueryMetrics:
    """Prometheus series of the query layer, on the hub's registry (hit rate = hits / (hits + misses))."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.cache = Counter("hub_query_cache_requests", "Query cache look-ups by result", ["result"], registry=r)
        self.duration = Histogram(
            "hub_query_duration_seconds",
            "Unified query latency by backend and cache result",
            ["backend", "cached"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.timeouts = Counter("hub_query_timeouts", "Queries stopped at their time limit", registry=r)


@dataclass
class QueryExecutor:
    """``execute(query)`` → ``{"data": [...], "metadata": {...}}``; ``stream(query)`` for exports."""

    backend: QueryBackend
    cache: QueryCache | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    metrics: QueryMetrics = field(default_factory=QueryMetrics)

    def execute(self, query: Query, *, timeout_s: float | None = None) -> dict[str, Any]:
        started = time.perf_counter()
        key = f"{self.backend.name}:{query.fingerprint()}"
        if self.cache is not None:
            hit = self.cache.get(key)
            self.metrics.cache.labels("hit" if hit is not None else "miss").inc()
            if hit is not None:
                elapsed = time.perf_counter() - started
                self.metrics.duration.labels(self.backend.name, "true").observe(elapsed)
                hit_meta = {**hit["metadata"], "cached": True, "execution_time_ms": round(elapsed * 1000, 3)}
                return {"data": hit["data"], "metadata": hit_meta}
        generation = self.cache.generation(query.tenant) if self.cache is not None else None
        limit_s = min(timeout_s or self.timeout_s, MAX_TIMEOUT_S)
        try:
            result = self.backend.run(query, timeout_s=limit_s)
        except QueryTimeout:
            self.metrics.timeouts.inc()
            raise
        rows = result.rows
        has_more = query.limit is not None and len(rows) > query.limit
        if has_more:
            rows = rows[: query.limit]
        data = [_row_dict(result.columns, r) for r in rows]
        elapsed = time.perf_counter() - started
        tr = query.time_range
        meta: dict[str, Any] = {
            "execution_time_ms": round(elapsed * 1000, 3),
            "row_count": len(data),
            "cached": False,
            "backend": self.backend.name,
            "compiled_query": result.compiled_query,
            "columns": result.columns,
            "time_range": {"start": _iso_us(tr.start_us), "end": _iso_us(tr.end_us), "last": tr.last},
            "tenant": query.tenant,
            "offset": query.offset,
            "has_more": has_more,
            "next_cursor": (
                next_page_cursor(query, result.columns, rows[-1], sent=query.offset + len(data))
                if has_more
                else None
            ),
        }
        self.metrics.duration.labels(self.backend.name, "false").observe(elapsed)
        if self.cache is not None:
            self.cache.put(
                key,
                {"data": data, "metadata": meta},
                tenant=query.tenant,
                start_us=tr.start_us,
                end_us=tr.end_us,
                relative=tr.last is not None,
                generation=generation,
            )
        return {"data": data, "metadata": meta}

    def stream(
        self,
        query: Query,
        *,
        batch_rows: int = 65_536,
        time_limit_s: float | None = None,
        after: list[Any] | None = None,
        received_by_us: int | None = None,
    ) -> RowStream:
        return self.backend.stream(
            query, batch_rows=batch_rows, time_limit_s=time_limit_s, after=after, received_by_us=received_by_us
        )


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat() + "Z"
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def _iso_us(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).replace(tzinfo=None).isoformat() + "Z"


def _row_dict(columns: list[str], row: tuple[Any, ...]) -> dict[str, Any]:
    return {c: _iso(v) for c, v in zip(columns, row, strict=True)}
