"""Each detector finds injected anomalies on small synthetic series, stays quiet on clean noise, and is causal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.anomaly import (
    AutoencoderDetector,
    Detector,
    IsolationForestDetector,
    LSTMAutoencoderDetector,
    RobustDeviationDetector,
    RollingZScoreDetector,
    SeasonalResidualDetector,
    Severity,
)
from analytics.anomaly._rolling import run_onsets

N, AT = 1200, 1000


def make(kind: str, seed: int = 0, amplitude: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Hourly series with a daily cycle (``amplitude``) and noise, with one injected anomaly at AT."""
    rng = np.random.default_rng(seed)
    t = np.arange(N)
    ts = pd.date_range("2024-01-01", periods=N, freq="h").to_numpy()
    x = 10 + amplitude * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, N)
    if kind == "spike":
        x[AT] += 8
    elif kind == "shift":
        x[AT:] += 3
    elif kind == "seasonal":  # normal values, wrong time of day: half a cycle out of phase
        x[AT : AT + 8] = 10 + amplitude * np.sin(2 * np.pi * (t[AT : AT + 8] + 12) / 24) + rng.normal(0, 0.5, 8)
    elif kind == "trend":
        x[AT:] += 0.15 * np.arange(N - AT)
    return x, ts


def small_autoencoder() -> AutoencoderDetector:
    return AutoencoderDetector(epochs=15, max_train=600)


def small_lstm() -> LSTMAutoencoderDetector:
    return LSTMAutoencoderDetector(epochs=15, max_train=600)


DETECTORS = [
    RobustDeviationDetector,
    SeasonalResidualDetector,
    IsolationForestDetector,
    small_autoencoder,
    small_lstm,
]


def _available(det: Detector) -> None:
    if not det.available:
        pytest.skip(f"{det.name} unavailable (optional dependency missing)")


@pytest.mark.parametrize(
    ("factory", "kind"),
    [(f, k) for f in DETECTORS for k in ("spike", "shift")]
    + [(f, "seasonal") for f in DETECTORS if f is not RobustDeviationDetector],  # needs a season model
)
def test_detector_finds_injected_anomaly(factory, kind):
    det = factory()
    _available(det)
    # The robust detector has no season model: it gets a series without a daily cycle.
    x, ts = make(kind, amplitude=0.0 if factory is RobustDeviationDetector else 1.5)
    out = det.score(x, ts)
    assert len(out.anomaly_score) == N
    assert out.anomaly_score[AT : AT + 12].max() > 1.0, f"{det.name} missed the {kind}"


@pytest.mark.parametrize("factory", DETECTORS)
def test_detector_quiet_on_clean_noise(factory):
    det = factory()
    _available(det)
    x, ts = make("none", seed=1)
    score = det.score(x, ts).anomaly_score
    assert np.isfinite(score).all()
    assert np.mean(score > 1.0) < 0.01
    assert run_onsets(score > 1.0, 24).sum() <= 3


def test_trend_is_found_by_robust_detector():
    x, ts = make("trend", amplitude=0.0)
    assert RobustDeviationDetector().score(x, ts).anomaly_score[AT : AT + 100].max() > 1.0


def test_rolling_zscore_flags_big_spike():
    x, _ = make("none")
    x[AT] += 40
    assert RollingZScoreDetector(k=6).score(x).anomaly_score[AT] > 1.0


@pytest.mark.parametrize("factory", [RollingZScoreDetector, *DETECTORS])
def test_scores_are_causal(factory):
    det = factory()
    _available(det)
    x, ts = make("spike")
    full = det.score(x, ts)
    cut = 1050
    prefix = det.score(x[:cut], ts[:cut])
    for a, b in zip(full, prefix, strict=True):
        np.testing.assert_allclose(a[:cut], b, rtol=1e-6, atol=1e-9, equal_nan=True)


def test_isolation_forest_multivariate_joint_anomaly():
    """Two series that always move together; at AT they split (each still in its usual range)."""
    rng = np.random.default_rng(3)
    base = np.sin(np.arange(N) / 7.0) + rng.normal(0, 0.05, N)
    other = base + rng.normal(0, 0.05, N)
    other[AT : AT + 5] = -base[AT : AT + 5]
    both = np.column_stack([base, other])
    score = IsolationForestDetector().score(both).anomaly_score
    assert score[AT : AT + 6].max() > 1.0
    assert IsolationForestDetector().score(base).anomaly_score[AT : AT + 6].max() < score[AT : AT + 6].max()


def test_beyond_range_of_a_mostly_constant_feature_is_measured_in_standard_deviations():
    """A sparse feature (IQR 0: mostly zeros, a few ones) must not turn one unit past its range into a
    near-infinite distance (Poisson(0.2) noise used to score 1000, the cap, on its first 3)."""
    from analytics.anomaly.iforest import _beyond_range

    rng = np.random.default_rng(0)
    train = np.column_stack([(rng.random(2000) < 0.1).astype(float), rng.normal(size=2000)])
    std = train[:, 0].std()
    rows = np.array([[2.0, 0.0], [0.5, 0.0]])
    dist = _beyond_range(train, rows)
    assert dist[0] == pytest.approx(1.0 / std)  # one unit beyond the max (1), in standard deviations
    assert dist[1] == 0.0  # inside the range
    # A Gaussian feature keeps its IQR unit (the IQR exceeds the standard deviation there).
    far = np.quantile(train[:, 1], 0.75) - np.quantile(train[:, 1], 0.25)
    beyond = _beyond_range(train, np.array([[0.0, train[:, 1].max() + far]]))
    assert beyond[0] == pytest.approx(1.0)


def test_sparse_counts_never_score_at_the_cap():
    """Poisson(0.2) counts: rare values are unusual, not off the scale."""
    rng = np.random.default_rng(1)
    x = rng.poisson(0.2, 4000).astype(float)
    ts = pd.date_range("2024-01-01", periods=4000, freq="5min").to_numpy()
    assert IsolationForestDetector().score(x, ts).anomaly_score.max() < 50


def test_severity_mapping():
    assert Severity.from_score(0.5) is Severity.NONE
    assert Severity.from_score(1.2) is Severity.LOW
    assert Severity.from_score(2.0) is Severity.MEDIUM
    assert Severity.from_score(3.0) is Severity.HIGH
    assert Severity.from_score(10.0) is Severity.CRITICAL


@pytest.mark.parametrize("bad", [{"k": 0}, {"window": -1}])
def test_constructor_arguments_checked(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        RollingZScoreDetector(**bad)


def test_flat_stretch_is_found_by_robust_detector():
    """A sensor that sticks for a few hours: the short-window volatility collapses."""
    rng = np.random.default_rng(2)
    ts = pd.date_range("2024-01-01", periods=3000, freq="5min").to_numpy()
    x = 10 + rng.normal(0, 1.0, 3000)
    x[2500:2536] = x[2500]  # three hours
    score = RobustDeviationDetector().score(x, ts).anomaly_score
    assert score[2500:2540].max() > 1.0
    # without the 1-hour volatility (and the CUSUM, which also sees a value stuck off-centre) nothing does
    alone = RobustDeviationDetector(short_volatility_seconds=0, cusum_allowance=0).score(x, ts).anomaly_score
    assert alone[2500:2540].max() < 1.0


def test_cusum_finds_a_persistent_shift_that_window_means_score_below_one():
    """A shift of 1.5 sigma that stays: the 6-hour mean scores just under 1, the CUSUM goes over it."""
    rng = np.random.default_rng(2)
    ts = pd.date_range("2024-01-01", periods=4000, freq="5min").to_numpy()
    x = 50 + rng.normal(0, 1.0, 4000)
    x[3000:] += 1.5
    with_cusum = RobustDeviationDetector().score(x, ts).anomaly_score
    without = RobustDeviationDetector(cusum_allowance=0).score(x, ts).anomaly_score
    assert without[3000:].max() < 1.0 < with_cusum[3000:].max()
    assert with_cusum[:3000].max() < 1.0  # and no false alarm before it


def test_two_sided_cusum_matches_pages_recursion():
    from analytics.anomaly._rolling import two_sided_cusum

    r = np.random.default_rng(3).normal(0.2, 1.5, 500)
    r[100:160] += 2.0
    r[300:330] -= 3.0
    pos = neg = 0.0
    expected = []
    for v in r:
        pos, neg = max(0.0, pos + v - 0.5), max(0.0, neg - v - 0.5)
        expected.append(max(pos, neg))
    assert np.allclose(two_sided_cusum(r, 0.5), expected)
    assert two_sided_cusum(np.array([np.nan, 1.0]), 0.5).tolist() == [0.0, 0.5]  # NaN counts as no deviation


def test_cusum_ignores_isolated_spikes():
    """Clipping each z at 4 keeps a lone spike from posing as a shift."""
    rng = np.random.default_rng(6)
    x = 50 + rng.normal(0, 1.0, 4000)
    x[2000:3600:200] += 40.0  # eight lone spikes
    det = RobustDeviationDetector(k=1e9, volatility_seconds=0, short_volatility_seconds=0, trend_seconds=21_600)
    ts = pd.date_range("2024-01-01", periods=4000, freq="5min").to_numpy()
    s = det.score(x, ts).anomaly_score  # only the trend mean and the CUSUM can score here
    assert s[2000:].max() < 1.0


@pytest.mark.parametrize("bad", [{"cusum_k": 0}, {"cusum_clip": -1}])
def test_cusum_arguments_checked(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        RobustDeviationDetector(**bad)


def test_the_expected_range_never_collapses_to_a_point_after_the_seasonal_warm_up() -> None:
    """Until the seasonal residuals have a scale, the seasonal detector gives no expected value and the
    ensemble takes the robust detector's band (its floor of 1e-6 had made "the expected range [124.1, 124.1]")."""
    import pandas as pd

    from analytics.anomaly import AnomalyDetector
    from analytics.anomaly.statistical import RobustDeviationDetector, SeasonalResidualDetector

    n = 4 * 288
    ts = pd.date_range("2026-01-01", periods=n, freq="5min")
    x = 100 + 30 * np.sin(2 * np.pi * np.arange(n) / 288) + np.random.default_rng(0).normal(0, 2, n)
    out = AnomalyDetector([RobustDeviationDetector(), SeasonalResidualDetector()]).score(
        pd.DataFrame({"timestamp": ts, "value": x})
    )
    width = (out["yhat_upper"] - out["yhat_lower"]).dropna()
    assert len(width) > n // 2 and width.min() > 1.0  # the noise alone has sigma 2
