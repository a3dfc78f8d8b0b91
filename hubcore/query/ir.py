"""The unified query's typed IR: the allow-listed fields, operators, functions and limits, and the frozen
dataclasses every backend compiles (:class:`Query` and its parts), with :class:`QueryError`.

Usage (build one from the API's JSON with :func:`hubcore.query.model.parse_query`, which re-exports these
names: ``from hubcore.query.model import Query`` keeps working)::

    from hubcore.query.ir import Aggregation, FieldRef, Query, TimeRange

    by_model = Aggregation("5m", ("p95",), (FieldRef("column", "model"),))
    q = Query("t1", TimeRange(0, 3_600_000_000), aggregation=by_model)
    q.output_columns          # ['bucket', 'model', 'p95']
    q.fingerprint()           # a stable hash of the normalised query (the cache key, the cursor's check)
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import msgspec

from hubcore.errors import PermanentError
from hubcore.query.composite import COMPOSITES

ALL_TENANTS: Final = "*"
STRING_COLUMNS: Final = (
    "source_module", "event_type", "severity", "environment", "correlation_id", "event_id", "schema_version",
    "name", "unit", "status", "model", "provider", "asset_id", "team", "project", "user_id",
)  # fmt: skip
NUMERIC_COLUMNS: Final = ("value", "input_tokens", "output_tokens", "total_tokens")
OPERATORS: Final = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "regex")
STRING_OPERATORS: Final = ("eq", "ne", "in", "not_in", "contains", "regex")
NUMERIC_OPERATORS: Final = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte")
FUNCTIONS: Final = ("sum", "avg", "count", "min", "max", "p50", "p95", "p99", "stddev")
BUCKETS: Final[dict[str, int]] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400}
MAX_BUCKETS: Final = 10_000
MAX_LIMIT: Final = 10_000
DEFAULT_LIMIT: Final = 1000
MAX_RANGE_DAYS: Final = 400
MAX_IN_VALUES: Final = 1000
MAX_OFFSET: Final = 1_000_000
#: One key of a ``tags.<key>`` / ``payload.<path>`` field: the dots between keys are the path's, so a JSON
#: key with a dot (or a space, a leading digit...) cannot be named; the catalogue lists only keys that can.
KEY_PATTERN: Final = r"[A-Za-z_][A-Za-z0-9_\-]*"
MAX_PATH_KEYS: Final = 5
_PATH = re.compile(rf"{KEY_PATTERN}(\.{KEY_PATTERN}){{0,{MAX_PATH_KEYS - 1}}}")  # fullmatch ('$' passes "\n")
_LAST = re.compile(r"^(\d{1,6})(m|h|d|w)$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


class QueryError(PermanentError):
    """An invalid query; ``field`` is the JSON path of the culprit, ``status`` the HTTP status."""

    def __init__(self, field: str, message: str, *, status: int = 422, reason: str = "invalid_query") -> None:
        super().__init__(f"{field}: {message}" if field else message, reason=reason)
        self.field = field
        self.status = status


@dataclass(frozen=True, slots=True)
class FieldRef:
    """An event column (allow-listed), a tag key (``tags.team``) or a payload path (``payload.a.b``)."""

    kind: Literal["column", "tag", "payload"]
    name: str

    @property
    def label(self) -> str:
        return {"column": "", "tag": "tags.", "payload": "payload."}[self.kind] + self.name

    @property
    def json_path(self) -> str:
        return "$." + ".".join(f'"{p}"' if "-" in p else p for p in self.name.split("."))

    @property
    def numeric(self) -> bool:
        return self.kind == "column" and self.name in NUMERIC_COLUMNS


@dataclass(frozen=True, slots=True)
class Filter:
    field: FieldRef
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class Metric:
    """What to aggregate: ``field`` of events [of ``event_type``] [named ``name``], or a composite."""

    event_type: str | None = None
    name: str | None = None
    field: FieldRef | None = None  # None: rows are counted (count) / value column (others)
    composite: str | None = None
    #: The composite a metric name given as a bare string (``"metric": "error_rat"``) is close to: a typo of
    #: it unless the tenant has stored events of that name (the embedded backend refuses it otherwise,
    #: :func:`hubcore.query.catalog.stored_name_probe`).
    near_composite: str | None = None


def closest_composite(name: str) -> str | None:
    """The composite metric ``name`` is close to (a typo of it?), or None.

        >>> [closest_composite(n) for n in ("error_rat", "Cost_Per_Request", "gen_ai.client.token.usage")]
        ['error_rate', 'cost_per_request', None]
    """
    close = difflib.get_close_matches(name.lower(), list(COMPOSITES), n=1, cutoff=0.8)
    return close[0] if close else None


def misspelt_composite(metric: Metric, neither: str, read_as: str) -> QueryError:
    """The 422 on ``metric`` for a name given as a bare string close to a composite's (``metric.near_composite``)
    that the backend cannot read as a metric name either: a typo of the composite. Every backend words it the
    same way and suggests the same composite; ``neither`` says which metric names the backend reads,
    ``read_as`` how to ask for the name as a metric on it.

        >>> m = Metric(name="error_rat", near_composite="error_rate")
        >>> print(misspelt_composite(m, "a stored metric name", "..."))  # doctest: +ELLIPSIS
        metric: 'error_rat' is neither a composite metric nor a stored metric name; did you mean 'error_rate'? ...
    """
    return QueryError(
        "metric",
        f"{metric.name!r} is neither a composite metric nor {neither}; did you mean {metric.near_composite!r}? "
        f"(composites: {', '.join(COMPOSITES)}; {read_as})",
    )


@dataclass(frozen=True, slots=True)
class TimeRange:
    start_us: int
    end_us: int
    last: str | None = None  # "24h" when relative (resolved against now into start/end)

    @property
    def seconds(self) -> float:
        return (self.end_us - self.start_us) / 1e6

    def resumable_in(self, start_us: int, end_us: int) -> bool:
        """Whether a cursor whose window is ``[start_us, end_us)`` resumes a query of this range: the same
        instants, or for a relative range (``last``) the same length (a "last 24h" does not slide)."""
        if self.last is None:
            return (start_us, end_us) == (self.start_us, self.end_us)
        return end_us - start_us == self.end_us - self.start_us


@dataclass(frozen=True, slots=True)
class Aggregation:
    time_bucket: str | None = None
    functions: tuple[str, ...] = ("count",)
    group_by: tuple[FieldRef, ...] = ()


@dataclass(frozen=True, slots=True)
class SortKey:
    column: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    tenant: str
    time_range: TimeRange
    metric: Metric = field(default_factory=Metric)
    filters: tuple[Filter, ...] = ()
    aggregation: Aggregation = field(default_factory=Aggregation)
    sort: tuple[SortKey, ...] = ()
    limit: int | None = DEFAULT_LIMIT
    #: Rows before this page: skipped when ``after`` is None; else the rows the earlier pages held (a count).
    offset: int = 0
    #: The key (:func:`~hubcore.query.compile_duckdb.export_key`) of the last row of the page before: this
    #: page starts right after it (a page cursor, :mod:`hubcore.query.paging`). None: the first page.
    after: tuple[Any, ...] | None = None
    #: Only events received by then (and those without a receipt time) are read: the first page's time.
    received_by_us: int | None = None
    #: A composite's samples (:attr:`~hubcore.query.composite.Composite.samples`: its denominator's events)
    #: per row as a second value column, ``samples``, of the same scan: the analytics service's sample
    #: floor. Not part of a request body; the embedded store's compiler only (:func:`with_samples`).
    samples: bool = False

    @property
    def value_columns(self) -> list[str]:
        if self.metric.composite:
            return [self.metric.composite, *(["samples"] if self.samples else [])]
        return list(self.aggregation.functions)

    @property
    def output_columns(self) -> list[str]:
        head = ["bucket"] if self.aggregation.time_bucket else []
        return head + [g.label for g in self.aggregation.group_by] + self.value_columns

    def fingerprint(self, *, with_page: bool = True) -> str:
        """A stable hash of the normalised query (relative ranges by their ``last``, not resolved times)."""
        tr = self.time_range
        data: dict[str, Any] = {
            "tenant": self.tenant,
            "range": tr.last or [tr.start_us, tr.end_us],
            "metric": [self.metric.event_type, self.metric.name, self.metric.field and self.metric.field.label,
                       self.metric.composite],
            "filters": sorted([f.field.label, f.op, repr(f.value)] for f in self.filters),
            "agg": [self.aggregation.time_bucket, list(self.aggregation.functions),
                    [g.label for g in self.aggregation.group_by]],
            "sort": [[s.column, s.descending] for s in self.sort],
        }  # fmt: skip
        if self.metric.near_composite is not None:  # refused unless stored: not the answer of {"name": ...}
            data["near"] = self.metric.near_composite
        if self.samples:  # one more column: not the answer of the same body without it
            data["samples"] = True
        if with_page:
            data["page"] = [self.limit, self.offset]
            if self.after is not None:  # a later page: where it resumes, and on which window and events
                data["page"] += [[repr(v) for v in self.after], self.received_by_us, tr.start_us, tr.end_us]
        return hashlib.sha256(msgspec.json.encode(data)).hexdigest()[:32]


def decode_offset_cursor(cursor: Any) -> tuple[int, str]:
    """``(offset, query hash)`` of an offset cursor (what ``metadata.next_cursor`` was before keyset paging,
    :mod:`hubcore.query.paging`: it still resumes, as that offset); the offset is held to the bounds of ``offset`` (a tampered one
    must neither reach the store as a negative or 64-bit-overflowing OFFSET nor page past the cap)."""
    try:
        data = msgspec.json.decode(base64.urlsafe_b64decode(str(cursor) + "=" * (-len(str(cursor)) % 4)))
        offset, fingerprint = data["o"], data["q"]
    except Exception:
        raise QueryError("cursor", "not a cursor from this API; pass metadata.next_cursor unchanged") from None
    if isinstance(offset, bool) or not isinstance(offset, int) or not isinstance(fingerprint, str):
        raise QueryError("cursor", "not a cursor from this API; pass metadata.next_cursor unchanged")
    if not 0 <= offset <= MAX_OFFSET:
        raise QueryError("cursor", f"its offset is outside 0-{MAX_OFFSET} (the paging limit); narrow the query")
    return offset, fingerprint
