"""Generated series with one labelled anomaly each, NAB-style windows: generalisation checks for
``benchmarks/anomaly_eval.py`` (``--synthetic N``, ``--ops N``, ``--traces N``, ``--m4 N``, ``--noise N``).

Usage::

    from anomaly_series import m4_series, ops_series, synthetic_series, trace_series
    frame, windows, kind = ops_series(3)      # DataFrame(timestamp, value), [(start, end)], "latency-burst"

Five families:

* ``synthetic_series`` — clean shapes (Gaussian noise, optional daily cycle and random walk) with one
  anomaly of seven kinds. Settings were never chosen on it.
* ``ops_series`` — operational-metric shapes with the nuisances of real monitoring data: heavy-tailed
  AR(1) CPU, Poisson counts (tweet-like), rush-hour traffic, log-normal latency; *unlabelled normal bursts*
  about once every two days; hourly series of 1,500-2,600 points and 5-minute ones of 3,000-16,000; a
  third of the 5-minute ones sampled irregularly (jitter and gaps, as NAB's traffic files). One labelled
  anomaly each: a burst x5-8, an outage, a level shift of 40 %, a one-day ramp to about double, or a day
  of four-fold noise. Added on 26 Nov 2026, after the ensemble's settings were chosen; since then only
  one of four sets that a change must not make worse, never tuned on alone. It measures how
  precision holds up when routine bursts are everywhere, which is what NAB's unseen real categories
  (Twitter volumes, AWS CloudWatch) look like.
* ``trace_series`` — *real* LLM traffic: requests, prompt tokens and generated tokens per second (and
  the mean generated tokens per request over 5 s) from the Azure LLM inference traces (code and
  conversation, 2023) and the Mooncake conversation trace in ``/work/shared/data/llm_traces/``, 11 series
  of 700-3,500 points replayed one point per 5 minutes (so a day-based rule sees days). Bursty,
  zero-inflated and heavy-tailed as served traffic is. Kinds: ``none`` (the series as recorded: every
  alert is a false positive) and four injected anomalies: a burst (x4 plus the 99th percentile for 8
  points), a single spike (3x the 99th percentile), an outage (zero for 24 points or twice the longest
  silence so far, whichever is longer) and a level shift (x1.8). Added on 27 Nov 2026 as
  a check on data of the product's own domain; never tuned on.
* ``m4_series`` — *real* hourly series of another domain: the 414 of the M4 competition's hourly set
  (``/work/shared/data/forecast/m4/``, 748-1,008 points: short, strongly daily and weekly), as recorded
  or with one anomaly sized by the series' own day-over-day variation: a spike, a dip, a level shift, a
  day without its daily cycle, a day of extra noise. Added on 27 Nov 2026; it found that the detectors'
  warm-ups (several hundred points) left short hourly series half unwatched.
* ``noise_series`` — no anomaly at all: ten kinds of noise (Gaussian, Student t3, Poisson 0.2 and 3,
  0/1, log-normal, AR(1), random walk, a daily sine, zero-inflated log-normal), 4,000 five-minute
  points each. Every alert is a false positive: how often the detector pages on data that is only noisy.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

SYNTHETIC_KINDS = ("spike", "shift", "var", "flat", "phase", "trend", "dip")


def synthetic_series(seed: int) -> tuple[pd.DataFrame, list[tuple[str, str]], str]:
    """One generated series with one labelled anomaly, NAB-style window (10 % of the length).

    A check that settings chosen on NAB hold on series never looked at while choosing them: sampling
    1 min, 5 min or 1 h; 3,000 to 6,000 points; a daily cycle of amplitude 0, 1 or 3; Gaussian noise,
    plus a random walk in one series of three; the anomaly (kind ``seed % 7``) between 40 % and 85 %.
    """
    rng = np.random.default_rng(seed)
    step = (60, 300, 300, 3600)[seed % 4]
    n = int(rng.integers(3000, 6000))
    day = 86_400 // step
    t = np.arange(n)
    amp = float(rng.choice([0.0, 1.0, 3.0]))
    noise = float(rng.choice([0.3, 1.0]))
    x = 20 + amp * np.sin(2 * np.pi * t / day) + rng.normal(0, noise, n)
    if seed % 3 == 0:
        x = x + np.cumsum(rng.normal(0, 0.05, n))
    kind = SYNTHETIC_KINDS[seed % len(SYNTHETIC_KINDS)]
    at = int(rng.integers(int(0.4 * n), int(0.85 * n)))
    span = max(10, day // 8)
    if kind == "spike":
        x[at] += 8 * noise + 3 * amp
    elif kind == "dip":
        x[at : at + 3] -= 8 * noise + 3 * amp
    elif kind == "shift":
        x[at:] += 6 * noise
    elif kind == "var":
        x[at : at + span] += rng.normal(0, 4 * noise, span)
    elif kind == "flat":
        x[at : at + span] = x[at]
    elif kind == "phase":
        shifted = 20 + amp * np.sin(2 * np.pi * (t[at : at + span] + day / 2) / day)
        x[at : at + span] = shifted + rng.normal(0, noise, span) if amp else x[at : at + span] + 6 * noise
    elif kind == "trend":
        x[at:] += np.arange(n - at) * noise * 0.02
    ts = pd.date_range("2024-01-01", periods=n, freq=f"{step}s")
    half = int(0.05 * n)
    window = [(str(ts[max(0, at - half)]), str(ts[min(n - 1, at + half)]))]
    return pd.DataFrame({"timestamp": ts, "value": x}), window, kind


OPS_BASES = ("cpu", "counts", "traffic", "latency")
OPS_KINDS = ("burst", "outage", "shift", "ramp", "noise")


def ops_series(seed: int) -> tuple[pd.DataFrame, list[tuple[str, str]], str]:
    """One operational-metric series (base ``seed % 4``, anomaly ``(seed // 4) % 5``), NAB-style window."""
    rng = np.random.default_rng(10_000 + seed)
    base = OPS_BASES[seed % 4]
    kind = OPS_KINDS[(seed // 4) % 5]
    hourly = bool(rng.random() < 0.25)
    step = 3600 if hourly else 300
    n = int(rng.integers(1500, 2600)) if hourly else int(rng.integers(3000, 16000))
    day = 86_400 // step
    t = np.arange(n)
    daily = np.sin(2 * np.pi * t / day)
    weekday = ((t // day) % 7) < 5
    bursts = np.ones(n)  # routine, unlabelled bursts: about one every two days, x1.8-3 for 3-12 points
    for b0 in np.flatnonzero(rng.random(n) < 1 / (2 * day)):
        bursts[b0 : b0 + int(rng.integers(3, 13))] *= rng.uniform(1.8, 3.0)
    if base == "cpu":
        cpu_level = rng.uniform(20, 60)
        shocks = rng.standard_t(3, n) * 2
        ar = np.zeros(n)
        for i in range(1, n):
            ar[i] = 0.8 * ar[i - 1] + shocks[i]
        x = cpu_level * (1 + 0.15 * daily) + ar
        x = x * np.where(bursts > 1, 1.3, 1.0)
    elif base == "counts":
        x = rng.poisson(rng.uniform(5, 80) * (1 + 0.6 * daily) * bursts).astype(float)
    elif base == "traffic":
        hour = (t % day) / day * 24
        rush = np.exp(-((hour - 8) ** 2) / 2) + np.exp(-((hour - 17.5) ** 2) / 2)
        x = 65 - 25 * rush * weekday + rng.normal(0, 3, n) - 10 * (bursts > 1)
    else:
        x = rng.uniform(100, 400) * np.exp(0.1 * daily + rng.normal(0, 0.25, n)) * np.where(bursts > 1, 2.0, 1.0)
    at = int(rng.integers(int(0.35 * n), int(0.9 * n)))
    scale = float(np.median(np.abs(x - np.median(x))) * 1.4826 + 1e-9)
    level = float(np.median(x))
    if kind == "burst":
        w = int(rng.integers(6, 25))
        x[at : at + w] = x[at : at + w] * rng.uniform(5, 8) + (5 * scale if level < 5 * scale else 0.0)
    elif kind == "outage":
        w = int(min(int(rng.integers(12, 49)), n - at))
        x[at : at + w] = 0.0 if base == "counts" else np.min(x[:at]) * 0.5 + rng.normal(0, scale * 0.1, w)
    elif kind == "shift":
        x[at:] = x[at:] + rng.choice([-1, 1]) * max(0.4 * abs(level), 4 * scale)
    elif kind == "ramp":
        x[at:] = x[at:] + np.minimum((t[at:] - at) / day, 1.0) * max(abs(level), 5 * scale)
    else:
        w = int(min(day, n - at))
        x[at : at + w] = x[at : at + w] + rng.normal(0, 4 * scale, w)
    if base == "counts":
        x = np.maximum(x, 0).round()
    start = pd.Timestamp("2024-03-01")
    if not hourly and rng.random() < 0.33:  # irregular sampling: jitter and random gaps
        gaps = rng.random(n) < 0.02
        secs = np.cumsum(np.where(gaps, step * rng.integers(2, 12, n), step + rng.integers(-30, 31, n)))
        ts = pd.DatetimeIndex(start + pd.to_timedelta(secs, unit="s"))
    else:
        ts = pd.date_range(start, periods=n, freq=f"{step}s")
    half = int(0.05 * n)
    window = [(str(ts[max(0, at - half)]), str(ts[min(n - 1, at + half)]))]
    return pd.DataFrame({"timestamp": ts, "value": x}), window, f"{base}-{kind}"


TRACES_ROOT = Path(os.environ.get("HUB_LLM_TRACES", "/work/shared/data/llm_traces"))
TRACE_KINDS = ("none", "burst", "spike", "outage", "shift")


@lru_cache(maxsize=1)
def trace_bases(root: Path = TRACES_ROOT) -> dict[str, np.ndarray]:
    """The real series ``trace_series`` is built on, by name (per-second values of the traces)."""
    out: dict[str, np.ndarray] = {}
    for name in ("code", "conv"):
        d = pd.read_csv(root / f"AzureLLMInferenceTrace_{name}.csv", parse_dates=["TIMESTAMP"]).set_index("TIMESTAMP")
        per_second = d.resample("1s")
        out[f"azure_{name}_requests"] = per_second.size().to_numpy(float)
        out[f"azure_{name}_prompt_tokens"] = per_second["ContextTokens"].sum().to_numpy(float)
        out[f"azure_{name}_output_tokens"] = per_second["GeneratedTokens"].sum().to_numpy(float)
        out[f"azure_{name}_output_per_request"] = d.resample("5s")["GeneratedTokens"].mean().ffill().to_numpy(float)
    m = pd.read_json(root / "mooncake_conversation_trace.jsonl", lines=True)
    m.index = pd.to_datetime(m["timestamp"], unit="ms")
    per_second = m.resample("1s")
    out["mooncake_requests"] = per_second.size().to_numpy(float)
    out["mooncake_prompt_tokens"] = per_second["input_length"].sum().to_numpy(float)
    out["mooncake_output_tokens"] = per_second["output_length"].sum().to_numpy(float)
    return out


def _longest_zero_run(x: np.ndarray) -> int:
    best = run = 0
    for v in x:
        run = run + 1 if v == 0 else 0
        best = max(best, run)
    return best


def trace_series(seed: int) -> tuple[pd.DataFrame, list[tuple[str, str]], str]:
    """One real LLM-traffic series (base ``seed % 11``, kind ``(seed // 11) % 5``), NAB-style window."""
    bases = trace_bases()
    names = sorted(bases)
    name = names[seed % len(names)]
    kind = TRACE_KINDS[(seed // len(names)) % len(TRACE_KINDS)]
    x = bases[name].copy()
    n = x.size
    ts = pd.date_range("2024-05-01", periods=n, freq="300s")
    if kind == "none":
        return pd.DataFrame({"timestamp": ts, "value": x}), [], f"{name}-none"
    rng = np.random.default_rng(500 + seed)
    at = int(rng.integers(int(0.35 * n), int(0.9 * n)))
    hi, med = float(np.quantile(x[:at], 0.99)), float(np.median(x[:at]))
    if kind == "burst":
        x[at : at + 8] = x[at : at + 8] * 4 + hi
    elif kind == "spike":
        x[at] = 3 * hi + med
    elif kind == "outage":
        w = min(n - at, max(24, 2 * _longest_zero_run(x[:at])))
        x[at : at + w] = 0.0
    else:
        x[at:] = x[at:] * 1.8
    half = int(0.05 * n)
    window = [(str(ts[max(0, at - half)]), str(ts[min(n - 1, at + half)]))]
    return pd.DataFrame({"timestamp": ts, "value": x}), window, f"{name}-{kind}"


NOISE_KINDS = (
    "gauss",
    "t3",
    "poisson0.2",
    "poisson3",
    "binary",
    "lognormal",
    "ar1",
    "randomwalk",
    "daily",
    "zeroinflated",
)


def noise_series(seed: int) -> tuple[pd.DataFrame, list[tuple[str, str]], str]:
    """Pure noise (kind ``seed % 10``), 4,000 five-minute points, no labelled window."""
    kind = NOISE_KINDS[seed % len(NOISE_KINDS)]
    rng = np.random.default_rng(20_000 + seed)
    n = 4000
    t = np.arange(n)
    x = {
        "gauss": lambda: rng.normal(size=n),
        "t3": lambda: rng.standard_t(3, n),
        "poisson0.2": lambda: rng.poisson(0.2, n).astype(float),
        "poisson3": lambda: rng.poisson(3, n).astype(float),
        "binary": lambda: rng.integers(0, 2, n).astype(float),
        "lognormal": lambda: rng.lognormal(0, 1, n),
        "ar1": lambda: pd.Series(rng.normal(size=n)).ewm(alpha=0.1).mean().to_numpy(),
        "randomwalk": lambda: np.cumsum(rng.normal(size=n)),
        "daily": lambda: np.sin(2 * np.pi * t / 288) + 0.3 * rng.normal(size=n),
        "zeroinflated": lambda: np.where(rng.random(n) < 0.9, 0.0, rng.lognormal(2, 1, n)),
    }[kind]()
    ts = pd.date_range("2024-01-01", periods=n, freq="300s")
    return pd.DataFrame({"timestamp": ts, "value": x}), [], f"{kind}"


M4_ROOT = Path(os.environ.get("HUB_M4_HOURLY", "/work/shared/data/forecast/m4"))
M4_KINDS = ("none", "spike", "dip", "shift", "flatday", "noisy")


@lru_cache(maxsize=1)
def m4_bases(root: Path = M4_ROOT) -> list[np.ndarray]:
    """The 414 real hourly series of the M4 competition (training and test parts joined, 748-1,008 points)."""
    train = pd.read_csv(root / "Hourly-train.csv", index_col=0)
    test = pd.read_csv(root / "Hourly-test.csv", index_col=0)
    out = []
    for name in train.index:
        a = train.loc[name].dropna().to_numpy(float)
        b = test.loc[name].dropna().to_numpy(float)
        out.append(np.concatenate([a, b]))
    return out


def m4_series(seed: int) -> tuple[pd.DataFrame, list[tuple[str, str]], str]:
    """One real hourly M4 series (base ``37 * seed % 414``, kind ``seed % 6``), NAB-style window.

    Injected anomalies are sized by the series' own day-over-day scale ``s`` (1.4826 x the median
    absolute difference from the same hour a day earlier, before the anomaly): a spike or a dip of 6s at
    one point, a level shift of 4s (up or down) to the end, a day whose daily cycle is gone (each hour
    replaced by the day's mean: a stuck or averaged feed), or a day with noise of 3s added. ``none`` is the
    series as recorded, so every alert is a false positive (real series may hold unlabelled events).
    """
    bases = m4_bases()
    x = bases[(37 * seed) % len(bases)].copy()
    kind = M4_KINDS[seed % len(M4_KINDS)]
    n = x.size
    ts = pd.date_range("2024-01-01", periods=n, freq="h")
    if kind == "none":
        return pd.DataFrame({"timestamp": ts, "value": x}), [], "m4-none"
    rng = np.random.default_rng(900 + seed)
    at = int(rng.integers(int(0.4 * n), int(0.85 * n)))
    s = 1.4826 * float(np.median(np.abs(x[24:at] - x[: at - 24])))
    s = s if s > 0 else float(np.std(x[:at])) or 1.0
    if kind == "spike":
        x[at] += 6 * s
    elif kind == "dip":
        x[at] -= 6 * s
    elif kind == "shift":
        x[at:] += 4 * s * (1 if rng.random() < 0.5 else -1)
    elif kind == "flatday":
        x[at : at + 24] = x[at : at + 24].mean()
    else:
        x[at : at + 24] += rng.normal(0.0, 3 * s, min(24, n - at))
    half = int(0.05 * n)
    window = [(str(ts[max(0, at - half)]), str(ts[min(n - 1, at + half)]))]
    return pd.DataFrame({"timestamp": ts, "value": x}), window, f"m4-{kind}"
