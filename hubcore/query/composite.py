"""Named composite metrics: ratios of aggregates over native events, shared by every backend.

A composite is a formula over *parts*; each part is one aggregate of one kind of event. Backends
compile parts their own way (a ``FILTER`` clause in DuckDB, a counter ``increase`` in PromQL) and fill
the same formula, so ``error_rate`` means the same thing everywhere.

    >>> COMPOSITES["error_rate"].parts["errors"].status
    'error'
    >>> sorted(COMPOSITES)
    ['cost_per_1k_tokens', 'cost_per_request', 'error_adjusted_throughput', 'error_rate']

Definitions (a *request* is one ``gen_ai.client.operation.duration`` telemetry event):

* ``cost_per_request``: USD of cost events / requests.
* ``cost_per_1k_tokens``: USD of cost events / (input + output tokens of requests) * 1000.
* ``error_rate``: requests with ``status = "error"`` / requests (0..1).
* ``error_adjusted_throughput``: successful requests per second over the bucket (or the whole range).

A ratio's *samples* (:attr:`Composite.samples`) are the events of its denominator's part: the requests
of an error rate or a cost per request, the requests whose tokens a cost per 1k tokens sums. How many
there were in a bucket says how much its value can be trusted (1 error in 2 requests is a 50 % error
rate). ``error_adjusted_throughput`` divides by the bucket's length, not by events: it has none.

    >>> [(c.name, c.samples) for c in COMPOSITES.values()]  # doctest: +NORMALIZE_WHITESPACE
    [('cost_per_request', 'requests'), ('cost_per_1k_tokens', 'tokens'), ('error_rate', 'requests'),
     ('error_adjusted_throughput', None)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

REQUEST_METRIC: Final = "gen_ai.client.operation.duration"


@dataclass(frozen=True, slots=True)
class Part:
    """One aggregate of one kind of event: ``agg`` of ``value`` over events of ``event_type`` [``name``]."""

    agg: Literal["sum", "count"]
    event_type: str
    name: str | None = None
    status: str | None = None
    value: Literal["value", "tokens"] | None = None  # None: count rows


@dataclass(frozen=True, slots=True)
class Composite:
    """``numerator / denominator``; both name parts as ``{part}``, the window length in seconds as ``{seconds}``."""

    name: str
    description: str
    unit: str
    parts: dict[str, Part] = field(default_factory=dict)
    numerator: str = ""
    denominator: str = ""
    #: The part whose events are a value's samples (its denominator's), or None: a denominator that is no
    #: events (the bucket's length, ``{seconds}``).
    samples: str | None = None

    @property
    def formula(self) -> str:
        return f"{self.numerator} / {self.denominator}"

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(sorted({p.event_type for p in self.parts.values()}))


_REQUESTS = Part("count", "telemetry", REQUEST_METRIC)
_ERRORS = Part("count", "telemetry", REQUEST_METRIC, status="error")
_COST = Part("sum", "cost", value="value")
_TOKENS = Part("sum", "telemetry", REQUEST_METRIC, value="tokens")

COMPOSITES: Final[dict[str, Composite]] = {
    c.name: c
    for c in (
        Composite(
            "cost_per_request",
            "USD of cost events divided by the number of requests (gen_ai.client.operation.duration events)",
            "USD",
            {"cost": _COST, "requests": _REQUESTS},
            "{cost}",
            "{requests}",
            "requests",
        ),
        Composite(
            "cost_per_1k_tokens",
            "USD of cost events per 1,000 tokens (input + output) of requests",
            "USD",
            {"cost": _COST, "tokens": _TOKENS},
            "{cost} * 1000",
            "{tokens}",
            "tokens",
        ),
        Composite(
            "error_rate",
            "share of requests whose status is 'error' (0..1)",
            "1",
            {"errors": _ERRORS, "requests": _REQUESTS},
            "{errors}",
            "{requests}",
            "requests",
        ),
        Composite(
            "error_adjusted_throughput",
            "successful requests per second over the bucket (or the whole range without a bucket)",
            "1/s",
            {"errors": _ERRORS, "requests": _REQUESTS},
            "({requests} - {errors})",
            "{seconds}",
        ),
    )
}
