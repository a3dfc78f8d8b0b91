"""What-if scenarios: baseline vs scenario forecasts of cost, latency and capacity.

Usage::

    from analytics.whatif import Fleet, MoveTraffic, PriceChange, ScaleTraffic, Scenario, what_if

    usage = ...   # ds, model, requests (per step), e.g. hourly requests per model
    prices = {"gpt-4o": 0.012, "llama-3-70b": 0.002}          # USD per request
    fleet = {"llama-3-70b": Fleet(instances=4, service_rate=2.5)}   # requests/s one instance serves
    scenario = Scenario([ScaleTraffic(2.0, model="gpt-4o"),
                         MoveTraffic("gpt-4o", "llama-3-70b", share=0.3),
                         PriceChange(-10.0, model="gpt-4o"),
                         AddInstances("llama-3-70b", 2)])
    table = what_if(usage, prices, scenario, h=168, fleet=fleet)
    # ds, model, metric, baseline[_lower/_upper], scenario[_lower/_upper], diff[_lower/_upper]

Method: each model's traffic is forecast with :class:`analytics.forecast.EnsembleForecaster`, and
``n_paths`` traffic paths are drawn from its calibrated predictive distribution. Scenario transforms
are applied to the *same* paths, so the difference ``scenario - baseline`` has its own interval
(its ``(1 - L)/2`` and ``(1 + L)/2`` path quantiles); central values are the transforms applied to
the point forecast. Formulas:

- ``ScaleTraffic(k, model)``: ``r'_m = k * r_m`` (every model when ``model`` is None);
- ``PriceChange(pct, model)``: ``p'_m = p_m * (1 + pct / 100)``;
- ``MoveTraffic(a, b, share)``: ``r'_a = (1 - share) r_a``, ``r'_b = r_b + share * r_a``;
- ``AddInstances(model, n)``: ``c'_m = c_m + n``;
- cost per step ``C = sum_m r_m * p_m`` (metric ``cost``, model ``*``) and per model;
- capacity ``c * mu`` requests/s (``mu`` = ``service_rate``), utilisation ``rho = lambda / (c mu)`` with
  ``lambda = r / step_seconds``;
- latency (M/M/c): offered load ``a = lambda / mu``, Erlang B by the recursion
  ``B_0 = 1, B_k = a B_{k-1} / (k + a B_{k-1})``, Erlang C ``P_wait = B_c / (1 - rho (1 - B_c))``,
  mean latency ``W = 1/mu + P_wait / (c mu - lambda)`` seconds; ``inf`` when ``rho >= 1`` (saturated).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import pandas as pd

from analytics.forecast.ensemble import EnsembleForecaster
from analytics.forecast.frequency import infer_frequency

__all__ = [
    "AddInstances",
    "Fleet",
    "MoveTraffic",
    "PriceChange",
    "ScaleTraffic",
    "Scenario",
    "ScenarioError",
    "WhatIfResult",
    "mmc_latency",
    "what_if",
    "what_if_result",
]


@dataclass(frozen=True)
class Fleet:
    """Serving capacity of one model: ``instances`` each serving ``service_rate`` requests/s."""

    instances: int
    service_rate: float

    def __post_init__(self) -> None:
        if self.instances < 1:
            raise ValueError(f"instances must be at least 1, got {self.instances}")
        if not (self.service_rate > 0 and math.isfinite(self.service_rate)):  # nan made every metric null
            raise ValueError(f"service_rate must be a positive number, got {self.service_rate}")


@dataclass
class State:
    """What a transform acts on: traffic arrays per model (paths or points), prices and fleets."""

    traffic: dict[str, np.ndarray]
    prices: dict[str, float]
    fleet: dict[str, Fleet]


class ScenarioError(ValueError):
    """A transform that cannot apply to the data (a model it names has no traffic or price, a fleet would be
    emptied): bad input, raised when the scenario is applied. ``field`` is the transform's field at fault
    (``model``, ``source``, ``target``, ``count``), ``index`` the transform's place in its scenario (set by
    :meth:`Scenario.apply`); :attr:`where` names both as an API body does (``scenario[0].model``)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.index: int | None = None

    @property
    def where(self) -> str:
        at = "scenario" if self.index is None else f"scenario[{self.index}]"
        return f"{at}.{self.field}" if self.field and self.index is not None else at


def _known(model: str | None, models: Mapping[str, object], what: str, field: str = "model",
           seen: Mapping[str, object] | None = None) -> None:  # fmt: skip
    """Refuse a ``model`` not in ``models`` (those with ``what``); one in ``seen`` (a model the scenario
    knows otherwise, e.g. by its traffic) is not called unknown, only said to lack ``what``."""
    if model is not None and model not in models:
        known = f"models with {what}: {', '.join(sorted(models))}" if models else f"no model has {what}"
        if seen is not None and model in seen:
            raise ScenarioError(f"model {model!r} has no {what.removeprefix('a ')} ({known})", field=field)
        raise ScenarioError(f"unknown model {model!r}; {known}", field=field)


class Transform(Protocol):
    def apply(self, state: State) -> State: ...


@dataclass(frozen=True)
class ScaleTraffic:
    """Multiply the traffic of ``model`` (all models when None) by ``factor``."""

    factor: float
    model: str | None = None

    def __post_init__(self) -> None:
        if not self.factor >= 0:  # negative traffic is no scenario: costs went negative, bounds crossed
            raise ValueError(f"factor must be a non-negative number, got {self.factor}")

    def apply(self, state: State) -> State:
        _known(self.model, state.traffic, "traffic")
        traffic = {m: r * self.factor if self.model in (None, m) else r for m, r in state.traffic.items()}
        return replace(state, traffic=traffic)


@dataclass(frozen=True)
class PriceChange:
    """Change the price of ``model`` (all models when None) by ``percent``."""

    percent: float
    model: str | None = None

    def __post_init__(self) -> None:
        if not self.percent >= -100.0:  # below -100 % the price, and so the cost, turns negative
            raise ValueError(f"percent must be at least -100, got {self.percent}")

    def apply(self, state: State) -> State:
        _known(self.model, state.prices, "a price", seen=state.traffic)
        factor = 1.0 + self.percent / 100.0
        prices = {m: p * factor if self.model in (None, m) else p for m, p in state.prices.items()}
        return replace(state, prices=prices)


@dataclass(frozen=True)
class MoveTraffic:
    """Move ``share`` (0..1) of ``source``'s traffic to ``target``."""

    source: str
    target: str
    share: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"share must be between 0 and 1, got {self.share}")
        if self.source == self.target:
            raise ValueError(f"target must be a model other than source, got {self.source!r} for both")

    def apply(self, state: State) -> State:
        # (the same words on both sides: the source had been "unknown source model", the target "no price")
        _known(self.source, state.traffic, "traffic", "source")
        _known(self.target, state.prices, "a price", "target", seen=state.traffic)
        traffic = dict(state.traffic)
        moved = traffic[self.source] * self.share
        traffic[self.source] = traffic[self.source] - moved
        traffic[self.target] = traffic.get(self.target, np.zeros_like(moved)) + moved
        return replace(state, traffic=traffic)


@dataclass(frozen=True)
class AddInstances:
    """Add ``count`` instances (negative removes) to ``model``'s fleet."""

    model: str
    count: int

    def apply(self, state: State) -> State:
        _known(self.model, state.fleet, "a fleet", "model", seen=state.traffic)
        if state.fleet[self.model].instances + self.count < 1:
            raise ScenarioError(
                f"{self.model!r} has {state.fleet[self.model].instances} instance(s): adding "
                f"{self.count} leaves none (at least 1 must remain)",
                field="count",
            )
        fleet = dict(state.fleet)
        fleet[self.model] = replace(fleet[self.model], instances=fleet[self.model].instances + self.count)
        return replace(state, fleet=fleet)


@dataclass(frozen=True)
class Scenario:
    """An ordered list of transforms applied to the baseline."""

    transforms: Sequence[Transform]

    def apply(self, state: State) -> State:
        for index, transform in enumerate(self.transforms):
            try:
                state = transform.apply(state)
            except ScenarioError as exc:
                exc.index = index
                raise
        return state


def mmc_latency(arrival_rate: np.ndarray, service_rate: float, instances: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean M/M/c latency (s) and utilisation for arrival rates (requests/s); formulas above."""
    lam = np.asarray(arrival_rate, dtype=float)
    a = lam / service_rate
    rho = a / instances
    erlang_b = np.ones_like(a)
    for k in range(1, instances + 1):
        erlang_b = a * erlang_b / (k + a * erlang_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_wait = erlang_b / (1.0 - rho * (1.0 - erlang_b))
        wait = p_wait / (instances * service_rate - lam)
    latency = np.where(rho < 1.0, 1.0 / service_rate + wait, np.inf)
    return latency, rho


def _metrics(state: State, step_seconds: float) -> dict[tuple[str, str], np.ndarray]:
    out: dict[tuple[str, str], np.ndarray] = {}
    total = None
    for model, traffic in state.traffic.items():
        cost = traffic * state.prices.get(model, 0.0)
        out[(model, "cost")] = cost
        total = cost if total is None else total + cost
        out[(model, "requests")] = traffic
        if model in state.fleet:
            fleet = state.fleet[model]
            latency, rho = mmc_latency(np.maximum(traffic, 0.0) / step_seconds, fleet.service_rate,
                                       fleet.instances)
            out[(model, "latency_s")] = latency
            out[(model, "utilization")] = rho
            out[(model, "capacity_rps")] = np.full_like(traffic, fleet.instances * fleet.service_rate)
    assert total is not None
    out[("*", "cost")] = total
    return out


#: Metrics whose horizon summary is a sum (the others are averaged over the horizon).
SUMMED = ("cost", "requests")


@dataclass(frozen=True)
class WhatIfResult:
    """``table``: one row per (ds, model, metric) with ``baseline``, ``scenario`` and ``diff``, each with
    ``_lower``/``_upper`` bounds; ``summary``: one row per (model, metric) over the whole horizon
    (``aggregate`` ``sum`` for cost and requests, ``mean`` otherwise), its bounds the quantiles of each
    path's total or mean, not totals of the per-step bounds (those assume every step at its 2.5 %
    quantile at once: far wider than the horizon's own uncertainty)."""

    table: pd.DataFrame
    summary: pd.DataFrame


def _paths(drawn: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Traffic paths: the drawn spread around the point forecast, never below zero."""
    return np.maximum(point + (drawn - drawn.mean(axis=0)), 0.0)


def what_if_result(
    usage: pd.DataFrame,
    prices: Mapping[str, float],
    scenario: Scenario,
    h: int,
    *,
    fleet: Mapping[str, Fleet] | None = None,
    time_col: str = "ds",
    model_col: str = "model",
    requests_col: str = "requests",
    level: float = 95.0,
    n_paths: int = 1000,
    forecaster: EnsembleForecaster | None = None,
) -> WhatIfResult:
    """Baseline vs scenario forecasts of cost, requests, latency, utilisation and capacity, per step
    (``table``) and over the whole horizon (``summary``); see :class:`WhatIfResult`."""
    missing = sorted(set(usage[model_col]) - set(prices))
    if missing:
        raise KeyError(f"no price for model(s) {', '.join(missing)}")
    frame = usage.rename(columns={model_col: "unique_id", time_col: "ds", requests_col: "y"})
    freq = infer_frequency(frame["ds"])
    fc = forecaster or EnsembleForecaster(freq=freq.alias, level=level)
    fc.forecast(frame[["unique_id", "ds", "y"]], h=h)
    results = fc.results_
    ds = next(iter(results.values())).ds
    point = {str(m): np.maximum(r.yhat, 0.0) for m, r in results.items()}
    paths = {str(m): _paths(r.sample_paths(n_paths, seed=i), point[str(m)]) for i, (m, r) in enumerate(results.items())}
    base_fleet = dict(fleet or {})
    step_seconds = freq.step.total_seconds()
    central_base = _metrics(State(point, dict(prices), base_fleet), step_seconds)
    central_scen = _metrics(scenario.apply(State(point, dict(prices), base_fleet)), step_seconds)
    path_base = _metrics(State(paths, dict(prices), base_fleet), step_seconds)
    path_scen = _metrics(scenario.apply(State(paths, dict(prices), base_fleet)), step_seconds)
    alpha = (100.0 - level) / 200.0
    frames = []
    summaries: list[dict[str, object]] = []
    for key in sorted(set(central_base) | set(central_scen)):
        zeros = np.zeros((n_paths, h))
        pb, ps = path_base.get(key, zeros), path_scen.get(key, zeros)
        with np.errstate(invalid="ignore"):
            diff = ps - pb
        row = {time_col: ds, "model": key[0], "metric": key[1]}
        for name, central, samples in (
            ("baseline", central_base.get(key, np.zeros(h)), pb),
            ("scenario", central_scen.get(key, np.zeros(h)), ps),
        ):
            row[name] = central
            row[f"{name}_lower"] = np.quantile(samples, alpha, axis=0, method="lower")
            row[f"{name}_upper"] = np.quantile(samples, 1 - alpha, axis=0, method="higher")
        with np.errstate(invalid="ignore"):
            row["diff"] = row["scenario"] - row["baseline"]
        row["diff_lower"] = np.quantile(diff, alpha, axis=0, method="lower")
        row["diff_upper"] = np.quantile(diff, 1 - alpha, axis=0, method="higher")
        frames.append(pd.DataFrame(row))
        # over the horizon, per path: the interval of a total is not the total of per-step intervals
        how = "sum" if key[1] in SUMMED else "mean"
        agg = np.sum if how == "sum" else np.mean
        srow: dict[str, object] = {"model": key[0], "metric": key[1], "aggregate": how}
        with np.errstate(invalid="ignore"):
            for name, central, samples in (
                ("baseline", row["baseline"], pb), ("scenario", row["scenario"], ps), ("diff", row["diff"], diff)
            ):  # fmt: skip
                per_path = agg(samples, axis=1)
                total = float(agg(central))
                lo = float(np.quantile(per_path, alpha, method="lower"))
                hi = float(np.quantile(per_path, 1 - alpha, method="higher"))
                mid = float(np.mean(per_path))
                if all(map(math.isfinite, (total, lo, hi, mid))):
                    # the paths' spread around the point forecast's total: clipping each path at zero
                    # traffic lifts their mean above it, and the total fell below its own interval
                    lo, hi = total + lo - mid, total + hi - mid
                    if name != "diff":
                        lo = max(lo, 0.0)
                srow[name], srow[f"{name}_lower"], srow[f"{name}_upper"] = total, lo, hi
        summaries.append(srow)
    return WhatIfResult(pd.concat(frames, ignore_index=True), pd.DataFrame(summaries))


def what_if(
    usage: pd.DataFrame,
    prices: Mapping[str, float],
    scenario: Scenario,
    h: int,
    **kwargs: Any,
) -> pd.DataFrame:
    """Baseline vs scenario forecasts of cost, requests, latency, utilisation and capacity.

    Returns one row per (ds, model, metric) with ``baseline``, ``scenario`` and ``diff``, each with
    ``_lower``/``_upper`` bounds at ``level`` percent. ``model`` is ``*`` for the total cost. Keyword
    arguments as :func:`what_if_result` (``fleet``, ``level``, ``n_paths``, ``forecaster``, column names).
    """
    return what_if_result(usage, prices, scenario, h, **kwargs).table
