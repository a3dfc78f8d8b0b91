"""A bounded cache of ensemble forecasts, keyed by the exact series, horizon, seasons and configuration.

:func:`analytics.forecast.ensemble.forecast_array` with the models chosen per series (``models=None``) is
a pure function of the values it fits (after the ``max_train`` cut), the horizon, the candidate seasons
and the :class:`~analytics.forecast.ensemble.EnsembleConfig`. So a forecast asked again of the same data
(``GET /api/v1/forecast`` refreshed by a dashboard before the query's next bucket completes; what-if
scenarios tried one after another on the same history) is the one computed before, and need not be
fitted again: the key is a digest of all of those, so nothing has to be invalidated, and an entry that no
longer matches any data ages out (least recently used first, once ``max_bytes`` is held). Forecasts with
models given by the caller are not cached (a model's settings are not all in its ``repr``).

``mantissa_bits``: key the values by their leading bits only. The same buckets read twice through the
query layer are not always the same floats: DuckDB adds a bucket's values in parallel, in no fixed
order, so a ``sum`` (spend per hour) differs between reads in its last bits, and so do the forecasts
fitted on it (the forecast of one read is as right as another's). With ``mantissa_bits=28`` (about 8
significant digits; :data:`QUERY_MANTISSA_BITS`, what the hub's service uses) such a read finds the
forecast of the one before; values that differ by more are a different key.

>>> import numpy as np
>>> from analytics.forecast.ensemble import EnsembleConfig, forecast_array
>>> cache = ForecastCache()
>>> y = 10 + np.sin(np.arange(120) * 2 * np.pi / 24)
>>> a = forecast_array(y, 24, [24, 168], EnsembleConfig.bulk(), cache=cache)
>>> b = forecast_array(y, 24, [24, 168], EnsembleConfig.bulk(), cache=cache)
>>> cache.hits, cache.misses, np.array_equal(a.yhat, b.yhat), a.yhat is b.yhat
(1, 1, True, False)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from hubcore.lru import SizedLRU

if TYPE_CHECKING:
    from analytics.forecast.ensemble import EnsembleConfig, _ArrayResult

__all__ = ["DEFAULT_MAX_BYTES", "QUERY_MANTISSA_BITS", "ForecastCache", "forecast_key"]

#: The default bound: an entry is a few horizon-long arrays and the calibration's errors (a 7-day
#: forecast of 2,016 five-minute steps: about 80 KiB), so thousands of series' forecasts.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: Mantissa bits the service keys series read through the query layer by (see the module docstring): a
#: relative difference under about 4e-9 is the same key; a parallel sum of 10,000 values differs between
#: reads by about 1e-14, so two reads of a 2,000-step series get different keys about once in 200.
QUERY_MANTISSA_BITS = 28


def forecast_key(
    y: np.ndarray, h: int, seasons: Sequence[int], config: EnsembleConfig, mantissa_bits: int | None = None
) -> str:
    """Digest of what a forecast with the models chosen per series depends on (``repr(config)`` holds
    every field of the frozen dataclass); ``mantissa_bits``: of each value, only the leading bits count.

    >>> from analytics.forecast.ensemble import EnsembleConfig
    >>> a, b = np.array([0.1 + 0.2, 7.0]), np.array([0.3, 7.0])    # 0.30000000000000004 and 0.3
    >>> forecast_key(a, 24, [24], EnsembleConfig()) == forecast_key(b, 24, [24], EnsembleConfig())
    False
    >>> forecast_key(a, 24, [24], EnsembleConfig(), 28) == forecast_key(b, 24, [24], EnsembleConfig(), 28)
    True
    """
    digest = hashlib.blake2b(digest_size=20)
    values = np.ascontiguousarray(y, dtype=float)
    digest.update(f"{values.shape}|{int(h)}|{[int(s) for s in seasons]}|{config!r}|{mantissa_bits}".encode())
    if mantissa_bits is not None:
        # y = m * 2**e with 0.5 <= |m| < 1: m rounded to its leading bits (exact: a power-of-two scale)
        mantissa, exponent = np.frexp(values)
        values = np.ascontiguousarray(np.round(mantissa * float(2**mantissa_bits)))
        digest.update(np.ascontiguousarray(exponent).tobytes())
    digest.update(values.tobytes())
    return digest.hexdigest()


def _frozen(array: np.ndarray) -> np.ndarray:
    out = np.array(array, dtype=float, copy=True)
    out.setflags(write=False)
    return out


def _stored(result: _ArrayResult) -> _ArrayResult:
    """A read-only copy (a cached result is shared by every later hit: none may change it)."""
    cal = result.calibration
    calibration = replace(cal, bucket_scale=_frozen(cal.bucket_scale), z=_frozen(cal.z))
    return replace(result, yhat=_frozen(result.yhat), lower=_frozen(result.lower), upper=_frozen(result.upper),
                   weights=dict(result.weights), calibration=calibration, failures=dict(result.failures))  # fmt: skip


def _handed_out(result: _ArrayResult) -> _ArrayResult:
    """What a hit returns: its own arrays and dicts (the calibration, read-only, is shared)."""
    return replace(result, yhat=result.yhat.copy(), lower=result.lower.copy(), upper=result.upper.copy(),
                   weights=dict(result.weights), failures=dict(result.failures))  # fmt: skip


def _size(result: _ArrayResult) -> int:
    cal = result.calibration
    return int(sum(a.nbytes for a in (result.yhat, result.lower, result.upper, cal.bucket_scale, cal.z))) + 512


class ForecastCache(SizedLRU["_ArrayResult"]):
    """Least-recently-used ensemble forecasts, at most ``max_bytes`` of them (thread-safe); values keyed by
    their leading ``mantissa_bits`` (1 to 52; None: every bit)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, mantissa_bits: int | None = None) -> None:
        if mantissa_bits is not None and not 1 <= mantissa_bits <= 52:
            raise ValueError(f"mantissa_bits must be between 1 and 52 (or None), got {mantissa_bits}")
        super().__init__(max_bytes)
        self.mantissa_bits = mantissa_bits

    def key(self, y: np.ndarray, h: int, seasons: Sequence[int], config: EnsembleConfig) -> str:
        """:func:`forecast_key` with this cache's ``mantissa_bits``."""
        return forecast_key(y, h, seasons, config, self.mantissa_bits)

    def get_or_compute(self, key: str, compute: Callable[[], _ArrayResult]) -> _ArrayResult:
        """The forecast stored under ``key`` (see :func:`forecast_key`), computed (``compute``) only when
        not held already; an error of ``compute`` is raised, and nothing is stored."""
        held = self.get(key)
        if held is not None:
            return _handed_out(held)
        result = compute()
        stored = _stored(result)
        self.put(key, stored, _size(stored))
        return result
