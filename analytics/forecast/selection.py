"""Automatic model selection from data characteristics.

Usage::

    from analytics.forecast.selection import select_models, fallback_model

    models = select_models(profile)              # configured statsforecast models, unique aliases
    models = select_models(profile, mode="fast") # cheap set for bulk forecasting

Rules (``profile`` from :func:`analytics.forecast.profile.profile_series`):

- constant series: naive only.
- intermittent (more than 30 % zeros): Croston (optimised), ADIDA, IMAPA, plus seasonal naive for each
  strong season.
- several strong seasons (strength >= 0.3, covered twice; hourly data: daily and weekly): MSTL over
  all of them, MSTL over the shortest, seasonal naive per season and a two-cycle seasonal window
  average on the longest (AutoETS/AutoTheta model one season only; on M4 hourly adding them cost 3x
  and lost accuracy).
- one strong season (daily data: weekly): MSTL, AutoTheta, AutoETS (only for a season of at most
  ``ETS_MAX_SEASON`` steps), seasonal naive, and AutoARIMA only when
  ``length * season <= ARIMA_COST_LIMIT`` (its cost grows with both).
- otherwise: AutoETS, AutoTheta, naive and (short series only) AutoARIMA.
- ``mode="fast"`` (bulk): seasonal naive per season, the two-cycle seasonal window average and MSTL on
  the shortest season with an exponential-smoothing trend (no season: SES and naive); about 10x
  cheaper, for thousands of series (see :meth:`analytics.forecast.EnsembleConfig.bulk`).
"""

from __future__ import annotations

from typing import Any, Literal

from statsforecast.models import (
    ADIDA,
    IMAPA,
    MSTL,
    AutoARIMA,
    AutoETS,
    AutoTheta,
    CrostonOptimized,
    Naive,
    SeasonalNaive,
    SeasonalWindowAverage,
    SimpleExponentialSmoothingOptimized,
)

from analytics.forecast.profile import SeriesProfile

__all__ = ["ARIMA_COST_LIMIT", "ETS_MAX_SEASON", "SEASONAL_THRESHOLD", "fallback_model", "model_alias", "select_models"]

#: AutoARIMA is only tried when ``length * season_length`` is at most this (about 1 to 2 s per fit).
ARIMA_COST_LIMIT = 2_000
#: Longest season AutoETS is given (R's ``ets`` refuses more: "frequency too high"). A season of 288
#: (the daily cycle of 5-minute data) took AutoETS about a minute per fit on 1,500 points, and
#: ``hub forecast`` on 2,000 five-minute points ran for minutes with four fits.
ETS_MAX_SEASON = 24
#: Seasonal strength above which a season is modelled.
SEASONAL_THRESHOLD = 0.3
#: Share of zeros above which a series is treated as intermittent.
INTERMITTENT_SHARE = 0.3

Mode = Literal["full", "fast"]


def model_alias(model: Any) -> str:
    """The alias of a configured model (statsforecast models carry ``alias``)."""
    return str(getattr(model, "alias", type(model).__name__))


def fallback_model(profile: SeriesProfile) -> Any:
    """The model used when every selected model fails: seasonal naive, or naive without a season."""
    seasons = profile.strong_seasons(SEASONAL_THRESHOLD) or profile.seasons
    if seasons:
        return SeasonalNaive(season_length=seasons[0], alias="fallback_snaive")
    return Naive(alias="fallback_naive")


def _window_average(profile: SeriesProfile, season: int) -> list[Any]:
    """Seasonal window average over the last two cycles, when the series has them."""
    if profile.length < 3 * season:
        return []
    return [SeasonalWindowAverage(season_length=season, window_size=2, alias="swa")]


def select_models(profile: SeriesProfile, mode: Mode = "full") -> list[Any]:
    """Choose configured models for a series with the given characteristics (see module docstring)."""
    if profile.constant or profile.length < 4:
        return [Naive(alias="naive")]
    strong = profile.strong_seasons(SEASONAL_THRESHOLD)
    snaives: list[Any] = [SeasonalNaive(season_length=s, alias=f"snaive{s}") for s in strong]
    if profile.intermittency > INTERMITTENT_SHARE:
        return [
            CrostonOptimized(alias="croston"),
            ADIDA(alias="adida"),
            IMAPA(alias="imapa"),
            *snaives,
        ]
    if mode == "fast":
        models = list(snaives)
        if strong:
            models += _window_average(profile, max(strong))
            trend = SimpleExponentialSmoothingOptimized(alias="ses")
            models.append(MSTL(season_length=min(strong), trend_forecaster=trend, alias="mstl_ses"))
        else:
            models += [SimpleExponentialSmoothingOptimized(alias="ses"), Naive(alias="naive")]
        return models
    if len(strong) > 1:
        # several strong seasons (hourly: daily and weekly): MSTL supersedes the one-season ETS/Theta,
        # which scored worse and cost 3x more on M4 hourly (docs/forecast.md)
        return [
            MSTL(season_length=strong, alias="mstl"),
            MSTL(season_length=strong[0], alias=f"mstl{strong[0]}"),
            *snaives,
            *_window_average(profile, max(strong)),
        ]
    if strong:
        main = strong[0]
        models = [MSTL(season_length=main, alias="mstl"), AutoTheta(season_length=main, alias="theta")]
        if main <= ETS_MAX_SEASON:
            models.append(AutoETS(season_length=main, alias="ets"))
        models += snaives
        if profile.length * main <= ARIMA_COST_LIMIT:
            models.append(AutoARIMA(season_length=main, alias="arima"))
        return models
    models = [AutoETS(alias="ets"), AutoTheta(alias="theta"), Naive(alias="naive")]
    if profile.length <= ARIMA_COST_LIMIT // 4:
        models.append(AutoARIMA(alias="arima"))
    return models
