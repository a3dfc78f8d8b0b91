"""What makes forecasts and what-ifs fast without changing an answer: the forecast cache, the shared
standard-normal draws and the remembered exceedance probabilities (analytics.forecast.cache, .calibration)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.signal import lfilter
from scipy.stats import norm
from statsforecast.models import SeasonalNaive

import analytics.forecast.calibration as calibration
from analytics.forecast import EnsembleConfig, EnsembleForecaster, ForecastInputError, forecast_array
from analytics.forecast.cache import QUERY_MANTISSA_BITS, ForecastCache, forecast_key
from analytics.forecast.calibration import Calibration, standard_normals

SEASONS = [24, 168]


def _hourly(n: int = 240, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50 + 10 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 2, n)


# -- the forecast cache -----------------------------------------------------------------------------
def test_a_forecast_asked_again_is_the_same_and_not_fitted_again() -> None:
    cache = ForecastCache()
    y = _hourly()
    first = forecast_array(y, 48, SEASONS, EnsembleConfig.bulk(), cache=cache)
    again = forecast_array(y, 48, SEASONS, EnsembleConfig.bulk(), cache=cache)
    plain = forecast_array(y, 48, SEASONS, EnsembleConfig.bulk())
    assert (cache.hits, cache.misses, len(cache)) == (1, 1, 1)
    for res in (first, again):
        for name in ("yhat", "lower", "upper"):
            assert np.array_equal(getattr(res, name), getattr(plain, name))
        assert res.weights == plain.weights and res.failures == plain.failures
        assert np.array_equal(res.calibration.z, plain.calibration.z) and res.calibration.rho == plain.calibration.rho
    # a hit's arrays are its own: changing them changes neither the cache nor the next hit
    again.yhat[:] = -1.0
    again.weights.clear()
    third = forecast_array(y, 48, SEASONS, EnsembleConfig.bulk(), cache=cache)
    assert np.array_equal(third.yhat, plain.yhat) and third.weights == plain.weights
    # the calibration a hit shares is read-only
    with pytest.raises(ValueError, match="read-only"):
        third.calibration.z[0] = 0.0


@pytest.mark.parametrize(
    "change",
    [
        lambda y, h, s, c: (np.r_[y[:-1], y[-1] + 1e-9], h, s, c),  # one value, by a hair
        lambda y, h, s, c: (y, h + 1, s, c),
        lambda y, h, s, c: (y, h, [24], c),
        lambda y, h, s, c: (y, h, s, EnsembleConfig.totals()),
        lambda y, h, s, c: (y, h, s, EnsembleConfig.bulk(level=90.0)),
    ],
    ids=["value", "horizon", "seasons", "config", "level"],
)
def test_anything_a_forecast_depends_on_is_a_different_key(change: object) -> None:
    base = (_hourly(), 48, SEASONS, EnsembleConfig.bulk())
    assert forecast_key(*base) == forecast_key(*base)
    assert forecast_key(*change(*base)) != forecast_key(*base)  # type: ignore[operator]


def test_only_the_values_after_the_max_train_cut_count() -> None:
    """The forecast fits the last ``max_train`` points: data before them is not part of the key."""
    cache = ForecastCache()
    config = EnsembleConfig.bulk()
    assert config.max_train is not None
    y = _hourly(config.max_train + 50)
    earlier = y.copy()
    earlier[:50] += 1000.0
    forecast_array(y, 24, SEASONS, config, cache=cache)
    forecast_array(earlier, 24, SEASONS, config, cache=cache)
    assert (cache.hits, cache.misses) == (1, 1)


def test_forecasts_with_models_given_are_not_cached() -> None:
    cache = ForecastCache()
    models = [SeasonalNaive(season_length=24, alias="snaive24")]
    for _ in range(2):
        forecast_array(_hourly(), 24, SEASONS, EnsembleConfig.bulk(), models, cache=cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 0, 0)


def test_a_failed_forecast_is_not_stored() -> None:
    cache = ForecastCache()
    for _ in range(2):
        with pytest.raises(ForecastInputError, match="series too short"):
            forecast_array(np.arange(5.0), 24, SEASONS, EnsembleConfig.bulk(), cache=cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 2, 0)


def test_the_cache_holds_at_most_max_bytes_least_recently_used_first_out() -> None:
    one = ForecastCache()
    forecast_array(_hourly(seed=0), 24, SEASONS, EnsembleConfig.bulk(), cache=one)
    size = one.stats()["bytes"]
    cache = ForecastCache(max_bytes=2 * size + size // 2)  # room for two
    for seed in (0, 1, 2):
        forecast_array(_hourly(seed=seed), 24, SEASONS, EnsembleConfig.bulk(), cache=cache)
    assert len(cache) == 2 and cache.stats()["bytes"] <= cache.max_bytes
    forecast_array(_hourly(seed=2), 24, SEASONS, EnsembleConfig.bulk(), cache=cache)  # newest: held
    forecast_array(_hourly(seed=0), 24, SEASONS, EnsembleConfig.bulk(), cache=cache)  # oldest: gone
    assert (cache.hits, cache.misses) == (1, 4)
    nothing = ForecastCache(max_bytes=0)
    forecast_array(_hourly(), 24, SEASONS, EnsembleConfig.bulk(), cache=nothing)
    assert len(nothing) == 0
    cache.clear()
    assert len(cache) == 0 and cache.stats()["bytes"] == 0


def test_max_bytes_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="max_bytes must be >= 0, got -1"):
        ForecastCache(max_bytes=-1)


@pytest.mark.parametrize("bits", [0, 53, -3])
def test_mantissa_bits_must_be_between_1_and_52(bits: int) -> None:
    with pytest.raises(ValueError, match=f"mantissa_bits must be between 1 and 52 \\(or None\\), got {bits}"):
        ForecastCache(mantissa_bits=bits)


def test_a_sum_read_again_with_other_last_bits_finds_its_forecast() -> None:
    """A parallel sum read twice differs in its last bits: with ``mantissa_bits`` that is the same key,
    a real change of the data is not."""
    y = _hourly()
    noisy = np.nextafter(y, np.inf)  # one unit in the last place up, every value
    changed = y.copy()
    changed[100] *= 1 + 1e-7
    exact, lenient = ForecastCache(), ForecastCache(mantissa_bits=QUERY_MANTISSA_BITS)
    for cache in (exact, lenient):
        for values in (y, noisy, changed):
            forecast_array(values, 24, SEASONS, EnsembleConfig.bulk(), cache=cache)
    assert (exact.hits, exact.misses) == (0, 3)
    assert (lenient.hits, lenient.misses) == (1, 2)


def test_the_forecaster_uses_its_cache_for_every_series() -> None:
    ds = pd.date_range("2026-01-01", periods=240, freq="h")
    df = pd.concat([pd.DataFrame({"unique_id": uid, "ds": ds, "y": _hourly(seed=i)}) for i, uid in enumerate("ab")])
    cache = ForecastCache()
    first = EnsembleForecaster(freq="h", config=EnsembleConfig.bulk(), cache=cache).forecast(df, h=24)
    again = EnsembleForecaster(freq="h", config=EnsembleConfig.bulk(), cache=cache).forecast(df, h=24)
    plain = EnsembleForecaster(freq="h", config=EnsembleConfig.bulk()).forecast(df, h=24)
    assert (cache.hits, cache.misses) == (2, 2)
    pd.testing.assert_frame_equal(first, plain)
    pd.testing.assert_frame_equal(again, plain)


# -- the sampling: the same draws, the same answers ---------------------------------------------------
def test_standard_normals_are_the_seeded_draws_shared_and_read_only() -> None:
    steps, levels = standard_normals(7, 11, 3)
    rng = np.random.default_rng(3)
    assert np.array_equal(steps, rng.standard_normal((7, 11)))
    assert np.array_equal(levels, rng.standard_normal((7, 1)))
    assert standard_normals(7, 11, 3)[0] is steps
    assert not steps.flags.writeable and not levels.flags.writeable
    assert not np.array_equal(standard_normals(7, 11, 4)[0], steps)


def test_standard_normals_hold_at_most_their_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calibration, "NORMALS_MAX_BYTES", 2 * 100 * 8 + 400)  # room for two
    monkeypatch.setattr(calibration, "_normals", type(calibration._normals)())
    monkeypatch.setattr(calibration, "_normals_bytes", 0)
    first = standard_normals(10, 9, 0)[0]  # 90 + 10 values
    standard_normals(10, 9, 1)
    standard_normals(10, 9, 2)
    assert standard_normals(10, 9, 2)[0] is standard_normals(10, 9, 2)[0]
    assert standard_normals(10, 9, 0)[0] is not first  # the oldest went first
    assert calibration._normals_bytes <= calibration.NORMALS_MAX_BYTES
    big = standard_normals(100, 100, 0)[0]  # larger than the bound: drawn, never held
    assert big.shape == (100, 100) and (100, 100, 0) not in calibration._normals


def _reference_latent(cal: Calibration, h: int, n_paths: int, seed: int) -> np.ndarray:
    """The copula as it was first written: one array, draws made on the spot."""
    rng = np.random.default_rng(seed)
    paths = rng.standard_normal((n_paths, h))
    if h > 1 and cal.rho > 0:
        coef = math.sqrt(1.0 - cal.rho**2)
        paths = lfilter([coef], [1.0, -cal.rho], np.concatenate([paths[:, :1] / coef, paths[:, 1:]], axis=1), axis=1)
    if cal.shared > 0:
        level = rng.standard_normal((n_paths, 1))
        paths = math.sqrt(cal.shared) * level + math.sqrt(1.0 - cal.shared) * paths
    return np.asarray(paths, dtype=float)


def _reference_exceedance(cal: Calibration, yhat: np.ndarray, threshold: float, start: int, stop: int, n_paths: int) -> float:
    zs, n = cal.z, len(cal.z)
    with np.errstate(divide="ignore", invalid="ignore"):
        need = (threshold - yhat[start:stop]) / (cal.scale(stop)[start:stop] * cal.inflation)
    k = np.searchsorted(zs, need, side="right") - 1
    inner = np.clip(k, 0, max(n - 2, 0))
    gap = zs[np.minimum(inner + 1, n - 1)] - zs[inner]
    with np.errstate(divide="ignore", invalid="ignore"):
        x_star = inner + np.where(gap > 0, (need - zs[inner]) / gap, 0.0)
    bound = norm.ppf(np.clip(x_star / max(n - 1, 1), 0.0, 1.0))
    bound = np.where(k < 0, -np.inf, np.where(k >= n - 1, np.inf, bound))
    latent = _reference_latent(cal, stop, n_paths, 0)[:, start:stop]
    return float(np.mean(np.any(latent > bound, axis=1)))


def _calibrations() -> list[Calibration]:
    rng = np.random.default_rng(11)
    out = []
    for trial in range(12):
        errors = rng.normal(size=(1 + trial % 3, 10 + 7 * trial)) * (0.5 + trial)
        if trial % 2:
            errors += rng.normal(size=(errors.shape[0], 1)) * 3  # a level error: shared > 0
        if trial % 3 == 0:
            errors = np.cumsum(errors, axis=1)  # correlated steps: rho > 0
        out.append(Calibration.from_errors(errors))
    out.append(Calibration.from_errors(rng.normal(size=(3, 1))))  # one step validated: rho = shared = 0
    return out


def test_exceedance_probabilities_are_those_of_the_paths_drawn_on_the_spot() -> None:
    rng = np.random.default_rng(5)
    seen = set()
    for cal in _calibrations():
        h = int(rng.integers(2, 400))
        yhat = rng.normal(100, 10, h)
        # inside the errors' range, far above (no path can exceed: 0.0), far below (every path: 1.0), a window
        for threshold, start, stop in ((float(yhat.max()) + 5, 0, h), (1e12, 0, h), (-1e12, 0, h),
                                       (float(np.median(yhat)), h // 3, max(h // 3 + 1, h // 2))):  # fmt: skip
            n_paths = int(rng.integers(50, 900))
            want = _reference_exceedance(cal, yhat, threshold, start, stop, n_paths)
            got = cal.exceedance_probability(yhat, threshold, start, stop, n_paths=n_paths)
            assert got == want, (cal, threshold, start, stop)
            seen.add("certain" if want in (0.0, 1.0) else "simulated")
    assert seen == {"certain", "simulated"}
    assert {c.rho > 0 for c in _calibrations()} == {True, False}
    assert {c.shared > 0 for c in _calibrations()} == {True, False}


def test_sample_paths_are_those_drawn_on_the_spot() -> None:
    for i, cal in enumerate(_calibrations()):
        yhat = np.linspace(10, 20, 30 + i)
        latent = _reference_latent(cal, len(yhat), 200, i)
        u = norm.cdf(latent)
        z = np.interp(u * (len(cal.z) - 1), np.arange(len(cal.z)), cal.z) * cal.inflation
        assert np.array_equal(cal.sample_paths(yhat, 200, seed=i), yhat + cal.scale(len(yhat)) * z)


def test_an_exceedance_asked_again_is_not_simulated_again(monkeypatch: pytest.MonkeyPatch) -> None:
    cal = _calibrations()[3]
    yhat = np.linspace(0, 5, 50)
    threshold = float(yhat.max())
    calls = []
    real = Calibration._exceedance
    monkeypatch.setattr(Calibration, "_exceedance", lambda self, *a: calls.append(a) or real(self, *a))
    first = cal.exceedance_probability(yhat, threshold, n_paths=321)
    assert cal.exceedance_probability(yhat, threshold, n_paths=321) == first and len(calls) == 1
    cal.exceedance_probability(yhat, threshold, n_paths=322)  # any input changed: computed
    cal.exceedance_probability(yhat + 1e-9, threshold, n_paths=321)
    Calibration.from_errors(np.r_[cal.z, 0.5][None, :]).exceedance_probability(yhat, threshold, n_paths=321)
    assert len(calls) == 4


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"n_paths": 0}, "n_paths must be at least 1, got 0"),
    ({"start": 5, "stop": 5}, "exceedance window is empty"),
])  # fmt: skip
def test_exceedance_bad_arguments(kwargs: dict[str, int], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        _calibrations()[0].exceedance_probability(np.ones(10), 2.0, **kwargs)
