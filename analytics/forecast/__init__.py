"""Forecasting library: validated statsforecast ensembles with calibrated intervals.

Usage::

    from analytics.forecast import EnsembleForecaster, ForecastCache, breach_series

    fc = EnsembleForecaster(level=95)                 # frequency inferred, models chosen per series
    out = fc.forecast(df, h=168)                      # unique_id, ds, yhat, yhat_lower, yhat_upper, model
    alerts = breach_series(actual_df, out)            # 1 where the actual leaves the interval
    fc = EnsembleForecaster(cache=ForecastCache())    # the same data forecast again: not fitted again
    p = fc.results_["a"].exceedance_probability(900.0, start=t0, end=t1)

Command line: ``hub forecast --input FILE.csv --horizon 7d --level 95 --output OUT.csv``
(:mod:`analytics.forecast.cli`). See docs/forecast.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hubcore.lazy import lazy_attribute

if TYPE_CHECKING:
    from analytics.forecast.arguments import ForecastInputError
    from analytics.forecast.cache import ForecastCache
    from analytics.forecast.calibration import Calibration, breach_series
    from analytics.forecast.ensemble import EnsembleConfig, EnsembleForecaster, SeriesForecast, forecast_array
    from analytics.forecast.frequency import (
        Frequency,
        infer_frequency,
        parse_horizon,
        regularize,
        season_lengths,
    )
    from analytics.forecast.profile import SeriesProfile, clean_outliers, profile_series
    from analytics.forecast.selection import fallback_model, select_models

#: Each public name -> the submodule that defines it, imported on first use (:mod:`hubcore.lazy`): importing
#: ``analytics.forecast.cli`` for ``hub forecast --help`` does not import pandas or statsforecast.
_SOURCES: dict[str, str] = {
    **dict.fromkeys(("Calibration", "breach_series"), "calibration"),
    **dict.fromkeys(("EnsembleConfig", "EnsembleForecaster", "SeriesForecast", "forecast_array"), "ensemble"),
    **dict.fromkeys(("Frequency", "infer_frequency", "parse_horizon", "regularize", "season_lengths"), "frequency"),
    "ForecastInputError": "arguments",
    "ForecastCache": "cache",
    **dict.fromkeys(("SeriesProfile", "clean_outliers", "profile_series"), "profile"),
    **dict.fromkeys(("fallback_model", "select_models"), "selection"),
}  # fmt: skip

__all__ = [
    "Calibration",
    "EnsembleConfig",
    "EnsembleForecaster",
    "ForecastCache",
    "ForecastInputError",
    "Frequency",
    "SeriesForecast",
    "SeriesProfile",
    "breach_series",
    "clean_outliers",
    "fallback_model",
    "forecast_array",
    "infer_frequency",
    "parse_horizon",
    "profile_series",
    "regularize",
    "season_lengths",
    "select_models",
]

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any misspelt name

    def __getattr__(name: str) -> Any:
        return lazy_attribute(__name__, _SOURCES, name)
