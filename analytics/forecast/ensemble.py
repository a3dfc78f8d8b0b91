"""Ensemble forecaster: rolling-origin validation, inverse-error weights, conformal intervals.

Usage (the statsforecast style: configured models with aliases, column names as parameters)::

    from statsforecast.models import MSTL, SeasonalNaive
    from analytics.forecast import EnsembleForecaster

    fc = EnsembleForecaster(freq="h", level=95)                     # models chosen per series
    fc = EnsembleForecaster(models=[MSTL(season_length=[24, 168], alias="mstl"),
                                    SeasonalNaive(season_length=168, alias="snaive168")], freq="h")
    out = fc.forecast(df=df, h=168)   # unique_id, ds, yhat, yhat_lower, yhat_upper, model
    fc.results_["series-a"].exceedance_probability(threshold=900.0)

Per series:

1. outliers are replaced (Hampel rule on a robust decomposition, :mod:`.profile`, on the longest season
   the series covers three times, else without a season and a trend window of its own); after a detected
   level shift only the data since the shift is used when enough of it remains;
2. models are chosen from the data's characteristics unless given (:mod:`.selection`);
3. rolling-origin validation: ``n_windows`` consecutive folds, each fitted on the data before it and
   scored on the next ``h_val`` (= ``max(h, 24)`` where the history allows) original values;
4. weights ``w_m = MAE_m^-p / sum_k MAE_k^-p`` over the models with ``MAE_m <= cutoff * MAE_best``
   (``p = weight_power``); a model that raises gets weight 0, and when every model fails the
   ``fallback_model`` (seasonal naive) is used;
5. intervals are the conformal intervals of the ensemble's own validation errors (:mod:`.calibration`).

With a :class:`~analytics.forecast.cache.ForecastCache` (``cache=``), a series forecast before with the same
values, horizon, seasons and config is not fitted again (models chosen per series, in process only).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from analytics.forecast.cache import ForecastCache
from analytics.forecast.calibration import Calibration
from analytics.forecast.frequency import (
    ForecastInputError,
    Frequency,
    infer_frequency,
    regularize,
    season_lengths,
)
from analytics.forecast.profile import clean_outliers, profile_series
from analytics.forecast.selection import Mode, fallback_model, model_alias, select_models

__all__ = ["EnsembleConfig", "EnsembleForecaster", "SeriesForecast", "forecast_array"]

#: Fewest observations any series may have.
MIN_LENGTH = 16
#: Shortest validation window (steps), so short horizons still get enough residuals to calibrate.
MIN_VALIDATION = 24


@dataclass(frozen=True)
class EnsembleConfig:
    """Tunables of the ensemble; one set of defaults serves every series."""

    level: float = 95.0
    n_windows: int = 3
    weight_power: float = 1.0
    cutoff: float = 1.5
    outliers: bool = True
    outlier_k: float = 6.0
    level_shifts: bool = True
    mode: Mode = "full"
    max_train: int | None = 2016
    inflation: float = 1.0
    #: What the validation windows score: ``"step"``, the mean absolute error of each step; ``"total"``,
    #: the absolute error of each window's sum (for forecasts that are summed: a model whose level rests
    #: on one observation, ``naive``, scores well step by step and badly in total).
    objective: Literal["step", "total"] = "step"

    @classmethod
    def bulk(cls, level: float = 95.0) -> EnsembleConfig:
        """The fast path for thousands of series: cheap models, one validation window, 6 weeks of history
        at hourly steps (1,008 points)."""
        return cls(level=level, mode="fast", n_windows=1, max_train=1008)

    @classmethod
    def totals(cls, level: float = 95.0) -> EnsembleConfig:
        """The bulk path with three validation windows scored on each window's sum, for sums over the
        horizon (a budget's spend to the period end, a what-if's cost): one window cannot tell a
        forecast's level error, which every step shares, from noise, which sums average out
        (``benchmarks/budget_eval.py``: 95 % intervals of 7-day totals of M4 series cover 0.92, 0.73
        with one window scored step by step; about 15 % more time)."""
        return cls(level=level, mode="fast", n_windows=3, max_train=1008, objective="total")

    def __post_init__(self) -> None:
        if not 0 < self.level < 100:
            raise ValueError(f"level must be between 0 and 100 (exclusive), got {self.level}")
        if self.n_windows < 1:
            raise ValueError(f"n_windows must be at least 1, got {self.n_windows}")


@dataclass
class SeriesForecast:
    """The forecast of one series with its calibrated predictive distribution."""

    unique_id: Any
    ds: pd.DatetimeIndex
    yhat: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    weights: dict[str, float]
    calibration: Calibration
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The ``model`` column: one alias, or ``ensemble[alias:weight,...]``."""
        if len(self.weights) == 1:
            return next(iter(self.weights))
        inner = ",".join(f"{k}:{v:.2f}" for k, v in sorted(self.weights.items(), key=lambda kv: -kv[1]))
        return f"ensemble[{inner}]"

    def to_frame(self, id_col: str = "unique_id", time_col: str = "ds") -> pd.DataFrame:
        return pd.DataFrame(
            {
                id_col: self.unique_id,
                time_col: self.ds,
                "yhat": self.yhat,
                "yhat_lower": self.lower,
                "yhat_upper": self.upper,
                "model": self.label,
            }
        )

    def sample_paths(self, n_paths: int = 2000, seed: int = 0) -> np.ndarray:
        """``(n_paths, h)`` draws from the calibrated predictive distribution (see :mod:`.calibration`)."""
        return self.calibration.sample_paths(self.yhat, n_paths, seed)

    def exceedance_probability(
        self, threshold: float, start: Any = None, end: Any = None, n_paths: int = 4000
    ) -> float:
        """P(value > threshold at least once in ``[start, end]``) (timestamps; default: whole horizon)."""
        lo = 0 if start is None else int(self.ds.searchsorted(pd.Timestamp(start), side="left"))
        hi = len(self.ds) if end is None else int(self.ds.searchsorted(pd.Timestamp(end), side="right"))
        return self.calibration.exceedance_probability(self.yhat, threshold, lo, hi, n_paths=n_paths)


@dataclass(frozen=True)
class _ArrayResult:
    yhat: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    weights: dict[str, float]
    calibration: Calibration
    failures: dict[str, str]


def _predict(model: Any, y: np.ndarray, h: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = np.asarray(model.forecast(y=y, h=h)["mean"], dtype=float)
    if out.shape != (h,) or not np.all(np.isfinite(out)):
        raise ValueError("model returned a forecast with a wrong shape or non-finite values")
    return out


def _longest_season(model: Any) -> int:
    season = getattr(model, "season_length", 1)
    return int(max(season) if isinstance(season, (list, tuple)) else season or 1)


def _fold_plan(n: int, h: int, min_train: int, n_windows: int) -> tuple[int, int]:
    """Return ``(windows, h_val)``: as many windows of as long a horizon as the history allows."""
    target = max(h, MIN_VALIDATION)
    for windows in range(n_windows, 0, -1):
        h_val = min(target, (n - min_train) // windows)
        if h_val >= max(1, min(h, 24) // 2):
            return windows, h_val
    return 0, 0


def _weights(scores: dict[str, float], power: float, cutoff: float) -> dict[str, float]:
    """Inverse-error weights of the models within ``cutoff`` times the best validation error.

    >>> _weights({"a": 1.0, "b": 2.0, "c": 9.0}, 1.0, 2.5)
    {'a': 0.6666666666666666, 'b': 0.3333333333333333}
    """
    finite = {k: v for k, v in scores.items() if math.isfinite(v)}
    if not finite:  # errors beyond the float range (values near ±1e308): no ranking is possible
        return {k: 1.0 / len(scores) for k in scores}
    best = min(finite.values())
    if best <= 0:
        kept = [k for k, v in finite.items() if v <= 0]
        return {k: 1.0 / len(kept) for k in kept}
    raw = {k: v ** (-power) for k, v in finite.items() if v <= cutoff * best}
    total = sum(raw.values())
    if not total > 0 or not math.isfinite(total):  # v ** -power underflowed (or overflowed) for every model
        return {k: 1.0 / len(raw) for k in raw}
    return {k: v / total for k, v in raw.items()}


def forecast_array(
    y: np.ndarray, h: int, seasons: list[int], config: EnsembleConfig, models: Sequence[Any] | None = None,
    cache: ForecastCache | None = None,
) -> _ArrayResult:
    """Forecast one regular series given as an array (the core of :class:`EnsembleForecaster`).

    ``cache``: where forecasts of the same data, horizon, seasons and config are found (only with the
    models chosen per series; see :mod:`analytics.forecast.cache`)."""
    y = np.asarray(y, dtype=float)
    if config.max_train and len(y) > config.max_train:
        y = y[-config.max_train :]
    if cache is not None and not models:
        key = cache.key(y, h, seasons, config)
        return cache.get_or_compute(key, lambda: _forecast_array(y, h, seasons, config, None))
    return _forecast_array(y, h, seasons, config, models)


def _forecast_array(
    y: np.ndarray, h: int, seasons: list[int], config: EnsembleConfig, models: Sequence[Any] | None
) -> _ArrayResult:
    if len(y) < MIN_LENGTH:
        raise ForecastInputError(f"series too short: {len(y)} observations, at least {MIN_LENGTH} needed")
    profile = profile_series(y, seasons)
    chosen = list(models) if models else select_models(profile, config.mode)
    fallback = fallback_model(profile)
    aliases = [model_alias(m) for m in chosen]
    if len(set(aliases)) != len(aliases):
        raise ValueError(f"model aliases must be unique, got {aliases}")
    y_fit = y
    # the decomposition's per-phase median needs three cycles to ignore a spike (of two it is their mean,
    # and half the spike becomes "season"); shorter (a day or two of hourly spend): without a season
    cycles = [s for s in profile.seasons if len(y) >= 3 * s]
    if config.outliers and cycles:
        y_fit, _ = clean_outliers(y, max(cycles), config.outlier_k)
    elif config.outliers:
        y_fit, _ = clean_outliers(y, 1, config.outlier_k, window=min(25, max(7, len(y) // 2)))
    min_train = max(MIN_LENGTH, 2 * max(_longest_season(m) for m in [*chosen, fallback]) + 1)
    if config.level_shifts and profile.level_shift_at is not None and len(y) - profile.level_shift_at >= min_train + h:
        y, y_fit = y[profile.level_shift_at :], y_fit[profile.level_shift_at :]
    n = len(y)
    windows, h_val = _fold_plan(n, h, min_train, config.n_windows)
    # the fold horizon is kept shorter than a season's history needs; drop models that cannot fit
    failures: dict[str, str] = {}
    fold_preds: dict[str, list[np.ndarray]] = {model_alias(m): [] for m in [*chosen, fallback]}
    actuals: list[np.ndarray] = []
    for k in range(windows):
        cut = n - (windows - k) * h_val
        actuals.append(y[cut : cut + h_val])
        for m in [*chosen, fallback]:
            alias = model_alias(m)
            if alias in failures:
                continue
            if cut < 2 * _longest_season(m) + 1:
                failures[alias] = "history too short for its season in validation"
                continue
            try:
                fold_preds[alias].append(_predict(m, y_fit[:cut], h_val))
            except Exception as exc:  # any model failure is contained; the ensemble goes on
                failures[alias] = f"{type(exc).__name__}: {exc}"
    ok = [model_alias(m) for m in chosen if model_alias(m) not in failures]
    actual = np.concatenate(actuals) if actuals else np.empty(0)
    if windows and ok:
        if config.objective == "total":  # the error of each window's sum, per step
            scores = {a: float(np.mean([abs(float(np.sum(p - q))) for p, q in zip(fold_preds[a], actuals, strict=True)]))
                      / h_val for a in ok}  # fmt: skip
        else:
            scores = {a: float(np.mean(np.abs(np.concatenate(fold_preds[a]) - actual))) for a in ok}
        weights = _weights(scores, config.weight_power, config.cutoff)
    elif not windows:
        weights = {a: 1.0 / len(chosen) for a in aliases}
    else:
        weights = {}
    by_alias = {model_alias(m): m for m in [*chosen, fallback]}
    finals: dict[str, np.ndarray] = {}
    for alias in list(weights):
        try:
            finals[alias] = _predict(by_alias[alias], y_fit, h)
        except Exception as exc:
            failures[alias] = f"{type(exc).__name__}: {exc}"
    weights = {a: w for a, w in weights.items() if a in finals}
    if not weights:
        alias = model_alias(fallback)
        finals[alias] = _predict(fallback, y_fit, h)
        weights = {alias: 1.0}
    total = sum(weights.values())
    weights = {a: w / total for a, w in weights.items()}
    yhat = sum(w * finals[a] for a, w in weights.items())
    assert isinstance(yhat, np.ndarray)
    if windows and all(len(fold_preds.get(a, [])) == windows for a in weights):
        ens = sum(w * np.concatenate(fold_preds[a]) for a, w in weights.items())
        errors = (actual - ens).reshape(windows, h_val)
    else:  # no usable validation: in-sample seasonal-naive errors as a conservative proxy
        lag = min(profile.seasons) if profile.seasons else 1
        diffs = y[lag:] - y[:-lag]
        errors = diffs[-min(len(diffs), max(h, 2)) :].reshape(1, -1)
    calibration = Calibration.from_errors(errors, inflation=config.inflation)
    lower, upper = calibration.interval(yhat, config.level)
    if profile.non_negative:
        yhat, lower, upper = np.maximum(yhat, 0), np.maximum(lower, 0), np.maximum(upper, 0)
    return _ArrayResult(yhat, lower, upper, weights, calibration, failures)


def _run_chunk(
    chunk: list[tuple[Any, np.ndarray]], h: int, seasons: list[int], config: EnsembleConfig,
    models: Sequence[Any] | None, cache: ForecastCache | None = None,
) -> list[tuple[Any, _ArrayResult]]:
    return [(uid, forecast_array(y, h, seasons, config, models, cache)) for uid, y in chunk]


class EnsembleForecaster:
    """Forecast many series with a validated, weighted ensemble and calibrated intervals.

    ``models``: configured statsforecast models with unique aliases, or ``None`` to choose per series;
    ``level``: interval level in percent (default: ``config.level``, 95);
    ``freq``: pandas alias (``"h"``, ``"D"``) or ``None`` to infer it from the timestamps;
    ``n_jobs``: worker processes over series (1 = in process);
    ``cache``: a :class:`~analytics.forecast.cache.ForecastCache` where the forecasts of series seen before
    (the same values, horizon and config) are found instead of being fitted again (in process only).
    """

    def __init__(
        self,
        models: Sequence[Any] | None = None,
        freq: str | None = None,
        level: float | None = None,
        n_jobs: int = 1,
        config: EnsembleConfig | None = None,
        cache: ForecastCache | None = None,
    ) -> None:
        base = config or EnsembleConfig()
        self.config = base if level is None else replace(base, level=level)
        self.models = list(models) if models else None
        if self.models:
            aliases = [model_alias(m) for m in self.models]
            if len(set(aliases)) != len(aliases):
                raise ValueError(f"model aliases must be unique, got {aliases}")
        self.freq = freq
        self.n_jobs = max(1, n_jobs)
        self.cache = cache
        self.results_: dict[Any, SeriesForecast] = {}

    def _frequency(self, ds: pd.Series) -> Frequency:
        if self.freq is None:
            return infer_frequency(ds)
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(self.freq))
        return Frequency(step=step, alias=self.freq)

    def forecast(
        self,
        df: pd.DataFrame,
        h: int,
        id_col: str = "unique_id",
        time_col: str = "ds",
        target_col: str = "y",
    ) -> pd.DataFrame:
        """Forecast ``h`` steps past each series' end; returns one row per series and step.

        Each series is put on the regular grid first (missing stamps or values interpolated,
        duplicates averaged; see :func:`analytics.forecast.frequency.regularize`).
        """
        if h < 1:
            raise ValueError(f"h must be at least 1, got {h}")
        if df.empty:
            raise ForecastInputError("no data to forecast")
        frame = df if id_col in df.columns else df.assign(**{id_col: "series"})
        # an infinite value cannot be forecast from: it is interpolated like an empty one (one inf made
        # every seasonal model fail, and the ensemble fell back to a flat line)
        values = pd.to_numeric(frame[target_col], errors="coerce")
        frame = frame.assign(**{target_col: values.where(np.isfinite(values))}).sort_values([id_col, time_col])
        groups = [(uid, g) for uid, g in frame.groupby(id_col, sort=False)]
        freq = self._frequency(groups[0][1][time_col])
        seasons = season_lengths(freq)
        # a few missing stamps or values per series are re-inserted and interpolated
        groups = [(uid, regularize(g, freq, time_col=time_col, target_col=target_col)[0]) for uid, g in groups]
        items = [(uid, g[target_col].to_numpy(dtype=float)) for uid, g in groups]
        if self.n_jobs == 1 or len(items) < 2 * self.n_jobs:
            results = _run_chunk(items, h, seasons, self.config, self.models, self.cache)
        else:
            chunks = [items[i :: self.n_jobs * 4] for i in range(self.n_jobs * 4)]
            with ProcessPoolExecutor(self.n_jobs) as pool:
                futures = [
                    pool.submit(_run_chunk, c, h, seasons, self.config, self.models) for c in chunks if c
                ]
                results = [r for f in futures for r in f.result()]
        last = {uid: pd.Timestamp(g[time_col].iloc[-1]) for uid, g in groups}
        self.results_ = {}
        for uid, res in results:
            ds = pd.date_range(last[uid] + freq.step, periods=h, freq=freq.step)
            self.results_[uid] = SeriesForecast(
                uid, ds, res.yhat, res.lower, res.upper, res.weights, res.calibration, res.failures
            )
        order = [uid for uid, _ in groups]
        frames = [self.results_[uid].to_frame(id_col, time_col) for uid in order]
        return pd.concat(frames, ignore_index=True)
