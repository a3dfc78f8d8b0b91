"""OTel metric and attribute names → Prometheus names, like the Collector's prometheusremotewrite exporter.

Follows ``pkg/translator/prometheus`` (normalize_name.go, opentelemetry-collector-contrib) with
``add_metric_suffixes`` on:

* the name is split into tokens on every character outside ``[a-zA-Z0-9]`` and joined with ``_``;
* the unit's ``{annotation}`` parts are dropped (``{token}`` → no suffix); the main unit is mapped
  (``s`` → ``seconds``, ``ms`` → ``milliseconds``, ``By`` → ``bytes``, ...; unknown units kept as is) and
  appended unless the name already has it as a token; ``x/y`` adds ``per_<y>`` (``s`` → ``second``...);
* monotonic sums (counters) get ``_total`` (an existing ``total`` token is moved to the end);
* gauges with unit ``1`` get ``_ratio``;
* a leading digit gets a ``_`` prefix.

Two deliberate differences, so that the hub's series match its metric contract:

* the "already in the name" check ignores case: ``llm.cost.usd`` with unit ``USD`` is
  ``llm_cost_usd_total`` (the Collector would write ``llm_cost_usd_USD_total``);
* info series (names ending in ``.info``/``_info``) get no ``_ratio``: ``llm_registry_asset_info``.

    >>> metric_name("gen_ai.client.operation.duration", "s", "histogram")
    'gen_ai_client_operation_duration_seconds'
    >>> metric_name("llm.cost.usd", "USD", "sum", monotonic=True)
    'llm_cost_usd_total'
    >>> label_name("gen_ai.request.model")
    'gen_ai_request_model'
"""

from __future__ import annotations

import re
from functools import lru_cache

UNIT_MAP = {
    # time
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    # bytes
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    # SI
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    # misc
    "Cel": "celsius",
    "Hz": "hertz",
    "1": "",
    "%": "percent",
}

PER_UNIT_MAP = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}

_NON_ALNUM = re.compile(r"[^a-zA-Z0-9]+")
_ANNOTATION = re.compile(r"\{[^}]*\}")
_LABEL_BAD = re.compile(r"[^a-zA-Z0-9_]")


def _unit_tokens(unit: str) -> tuple[str, str]:
    """(main suffix, per-unit suffix) for an OTel unit string."""
    unit = _ANNOTATION.sub("", unit or "").strip()
    if not unit:
        return "", ""
    main, _, per = unit.partition("/")
    main_suffix = UNIT_MAP.get(main, main) if main else ""
    per_suffix = PER_UNIT_MAP.get(per, per) if per else ""
    clean = lambda s: "_".join(t for t in _NON_ALNUM.split(s) if t)  # noqa: E731
    return clean(main_suffix), clean(per_suffix)


@lru_cache(maxsize=4096)
def metric_name(name: str, unit: str, kind: str, *, monotonic: bool = False) -> str:
    """The Prometheus base name of an OTel metric (histograms: add ``_bucket``/``_sum``/``_count``).

    ``kind`` is the metric_points kind: gauge, sum, histogram, summary or observation.
    """
    tokens = [t for t in _NON_ALNUM.split(name) if t]
    lower = {t.lower() for t in tokens}
    main, per = _unit_tokens(unit)
    if main and main.lower() not in lower:
        tokens.append(main)
    if per and per.lower() not in lower:
        tokens += ["per", per]
    if kind == "sum" and monotonic:
        tokens = [t for t in tokens if t != "total"] + ["total"]
    is_info = bool(tokens) and tokens[-1] == "info"
    if kind == "gauge" and (unit or "").strip() == "1" and not is_info and "ratio" not in lower:
        tokens.append("ratio")
    out = "_".join(tokens)
    if out and out[0].isdigit():
        out = "_" + out
    return out


@lru_cache(maxsize=4096)
def label_name(key: str) -> str:
    """An attribute key as a Prometheus label name (``[a-zA-Z_][a-zA-Z0-9_]*``)."""
    out = _LABEL_BAD.sub("_", key)
    if not out:
        return "_"
    if out[0].isdigit():
        out = "key_" + out
    return out
