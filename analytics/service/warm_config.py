"""``processors.analytics.forecast_warm.preload``: forecasts to keep warm from the start.

Each entry names a forecast as ``GET /api/v1/forecast`` takes it (``query``: a configured query alias,
``horizon``, optional ``step``, ``level`` and ``tenant``); the scheduler computes it after its first pass
and again each time the query's next bucket completes, so the first call of a dashboard after a start is
answered from the forecast cache. Checked with the rest of the config, each error naming its key::

    forecast_warm:
      preload:
        - {query: requests_rate, horizon: 7d}                  # tenant "default", level 95
        - {query: cost_usd_hourly, horizon: 30d, tenant: acme}
        - {query: latency_p95, horizon: 1d, step: 15m}

    >>> PreloadSpec(query="requests_rate").key()
    ForecastKey(tenant='default', query='requests_rate', horizon='7d', level=95.0, history=None, threshold=None, window_start=None, window_end=None, step=None)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from analytics.service.warm import ForecastKey
from hubcore.errors import ConfigError, PermanentError
from hubcore.query.model import BUCKETS
from hubcore.tenants import TENANT_RULE, is_tenant

if TYPE_CHECKING:
    from analytics.service.config import AnalyticsConfig

__all__ = ["MAX_PRELOAD", "PreloadSpec", "check_preload", "preload_step_s"]

#: Entries ``preload`` may hold (each costs a forecast per bucket of its query: 3 s for 18 series of 5 minutes)
MAX_PRELOAD = 100


class PreloadSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One forecast to keep warm: what ``GET /api/v1/forecast?query=&horizon=&step=&level=&tenant=`` takes."""

    query: str
    horizon: str | int = "7d"
    step: str | None = None
    level: float = 95.0
    tenant: str = "default"

    def key(self) -> ForecastKey:
        """The key an API call with the same parameters (and no others) is remembered under."""
        return ForecastKey(self.tenant, self.query, str(self.horizon), float(self.level), step=self.step)


def preload_step_s(cfg: AnalyticsConfig, spec: PreloadSpec) -> int:
    """Seconds of the step the entry is forecast on (the query's, ``step``, or the coarser one the API
    chooses for a long horizon: :func:`analytics.service.handlers.forecast_step`); raises
    :class:`~hubcore.errors.PermanentError` as the API would (``horizon: ...``, ``step: ...``)."""
    from analytics.forecast import EnsembleConfig
    from analytics.service.handlers import forecast_step  # (handlers imports the service, which imports this)

    model = next((m for m in cfg.models.values() if m.model_class == "forecast"), None)
    full = model is not None and model.params.get("mode", "bulk") == "full"
    max_train = (EnsembleConfig() if full else EnsembleConfig.bulk()).max_train
    query, _, _ = forecast_step(cfg.queries[spec.query], str(spec.horizon), spec.step, max_train)
    return query.step_seconds


def check_preload(cfg: AnalyticsConfig, key: str) -> None:
    """Check ``cfg.forecast_warm.preload`` (``key``: ``processors.analytics.forecast_warm``): each error
    names ``<key>.preload.<i>.<field>`` and what the field takes."""
    preload = cfg.forecast_warm.preload
    if len(preload) > MAX_PRELOAD:
        raise ConfigError(f"{key}.preload", f"at most {MAX_PRELOAD} entries (each is refitted at every bucket of "
                          f"its query), got {len(preload)}")  # fmt: skip
    seen: dict[ForecastKey, int] = {}
    for i, spec in enumerate(preload):
        at = f"{key}.preload.{i}"
        if spec.query not in cfg.queries:
            raise ConfigError(
                f"{at}.query", f"unknown query {spec.query!r}; configured: {', '.join(sorted(cfg.queries))}"
            )
        if not is_tenant(spec.tenant):
            raise ConfigError(f"{at}.tenant", f"must be {TENANT_RULE}; got {spec.tenant!r}")
        if not 0 < spec.level < 100:
            raise ConfigError(f"{at}.level", f"must be between 0 and 100 (exclusive), got {spec.level}")
        if spec.step is not None and spec.step not in BUCKETS:
            raise ConfigError(f"{at}.step", f"must be one of {', '.join(BUCKETS)}; got {spec.step!r}")
        try:
            preload_step_s(cfg, spec)
        except PermanentError as exc:  # the API's 422 for the same parameters: "horizon: ..."
            field, _, message = str(exc).partition(": ")
            raise ConfigError(
                f"{at}.{field if field in ('horizon', 'step') else 'horizon'}", message or str(exc)
            ) from None
        if spec.key() in seen:
            raise ConfigError(at, f"the same forecast as {key}.preload.{seen[spec.key()]}")
        seen[spec.key()] = i
