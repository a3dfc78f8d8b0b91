"""``GET /forecast?query=requests_rate&horizon=7d`` just after a new bucket, with and without the warm pass.

Usage::

    python benchmarks/forecast_warm.py          # both, one after the other (about 40 s on 2 cores)
    python benchmarks/forecast_warm.py --pool   # also: the 18 series' fits in a pool of 2 processes
    python benchmarks/forecast_warm.py --restart   # only: the first call after a restart (about 40 s)

Two days of simulated requests (18 series: 3 environments x 6 models), forecast 7 days ahead on 5-minute
steps (2,016), through ``analytics.service.handlers.forecast`` (the route's handler) on a service with a
controlled clock. Each mode makes a first call, the same call again, then three times: a new 5-minute
bucket of events, the clock past its settle time, the service's warm pass (``warm_forecasts``; a no-op
with ``forecast_warm.enabled: false``) and the call, timed, with the fits it made (cache misses).
``--pool`` fits the same series in this process and in 2 worker processes (``fork`` and ``spawn``) and
says whether the forecasts are bit-identical.

``--restart``: a service answers the call and its warm pass writes ``analytics/forecast_warm.json``; then,
as after a restart, a new service on the same data directory (an empty forecast cache) answers its first
call three ways, twice each: without the file (what a restart did before the file existed), after its
first warm pass with the file (the scheduler's thread, after its first pass: timed apart), and after its
first warm pass with ``forecast_warm.preload`` naming the forecast and no file.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import CollectorRegistry

from analytics.forecast import EnsembleConfig, EnsembleForecaster
from analytics.forecast.warm import warm_up
from analytics.service import AnalyticsService
from analytics.service.handlers import forecast
from hubcore.storage.embedded import EmbeddedStore

NOW = 1_764_000_000.0
ENVS = ("production", "staging", "dev")
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama-3-70b", "mistral-large", "gemini-1.5-pro")


def rows(start: float, end: float, seed: int) -> dict[str, list[Any]]:
    """Requests (Poisson per minute, a daily swing) of every environment and model in ``[start, end)``."""
    rng = np.random.default_rng(seed)
    cols: dict[str, list[Any]] = {k: [] for k in ("tenant_id", "ts", "event_type", "name", "value", "status",
                                                   "model", "environment", "payload", "event_id")}  # fmt: skip
    for t0 in np.arange(start, end, 60):
        for e_i, env in enumerate(ENVS):
            for m_i, model in enumerate(MODELS):
                lam = (1 + m_i) * (1 + 2 * (e_i == 0)) * (1.2 + math.sin(2 * math.pi * t0 / 86_400)) / 3
                for _ in range(int(rng.poisson(lam))):
                    for k, v in (("tenant_id", "acme"), ("ts", int((t0 + rng.uniform(0, 59)) * 1e6)),
                                 ("event_type", "telemetry"), ("name", "gen_ai.client.operation.duration"),
                                 ("value", 500.0), ("status", "ok"), ("model", model), ("environment", env),
                                 ("payload", "{}"), ("event_id", f"{seed}-{len(cols['ts'])}")):  # fmt: skip
                        cols[k].append(v)
    return cols


def _store() -> EmbeddedStore:
    store = EmbeddedStore(Path(tempfile.mkdtemp()), wal_fsync=False, flush_interval=0.01)
    store.start()
    store.append("events", rows(NOW - 2 * 86_400, NOW, 1))
    assert store.flush(30)
    return store


def run(warm_on: bool) -> None:
    store = _store()
    clock = [NOW + 100]
    svc = AnalyticsService({"warm_up": False, "forecast_warm": {"enabled": warm_on}}, store, CollectorRegistry(),
                           clock=lambda: clock[0])  # fmt: skip
    warm_up()

    def call() -> tuple[float, dict[str, Any]]:
        t = time.perf_counter()
        out = forecast(svc, "acme", "requests_rate", horizon="7d")
        return time.perf_counter() - t, out

    first, out = call()
    again, _ = call()
    print(f"warm pass {'on' if warm_on else 'off'}: {len(out['series'])} series of {out['horizon_steps']} {out['step']} "
          f"steps; first call {first:.2f} s, again {again:.3f} s")  # fmt: skip
    for b in range(1, 4):
        store.append("events", rows(NOW + (b - 1) * 300, NOW + b * 300, 10 + b))
        assert store.flush(30)
        clock[0] = NOW + b * 300 + 40  # past the bucket's end and its settle time (30 s)
        t = time.perf_counter()
        svc.warm_forecasts()
        pass_s = time.perf_counter() - t
        fits = svc.forecasts.misses
        sec, _ = call()
        print(f"  new bucket {b}: warm pass {pass_s:.2f} s; call {sec:.3f} s, {svc.forecasts.misses - fits} fits")
    svc.shutdown()
    store.shutdown()


def restart(rounds: int = 2) -> None:
    store = _store()
    clock = [NOW + 100]
    warm_up()
    preload = [{"query": "requests_rate", "horizon": "7d", "tenant": "acme"}]
    path = store.data_dir / "analytics" / "forecast_warm.json"

    def service(**warm: Any) -> AnalyticsService:
        return AnalyticsService({"warm_up": False, "forecast_warm": warm}, store, CollectorRegistry(),
                                clock=lambda: clock[0])  # fmt: skip

    def first_call(svc: AnalyticsService, label: str) -> None:
        t = time.perf_counter()
        svc.warm_forecasts(yield_to_runs=False)  # (the scheduler's first warm pass; loads the file and the preload)
        pass_s = time.perf_counter() - t
        fits = svc.forecasts.misses
        t = time.perf_counter()
        forecast(svc, "acme", "requests_rate", horizon="7d")
        print(f"  {label}: warm pass {pass_s:.2f} s ({fits} fits); first call {time.perf_counter() - t:.3f} s, "
              f"{svc.forecasts.misses - fits} fits")  # fmt: skip

    before = service()
    forecast(before, "acme", "requests_rate", horizon="7d")
    before.warm_forecasts(yield_to_runs=False)  # writes the file (as the scheduler's pass would)
    saved = path.read_bytes()
    print(f"restart: {path.name} {len(saved)} bytes")
    for r in range(rounds):
        print(f" round {r + 1}")
        path.unlink()
        first_call(service(), "no file (before)")
        path.write_bytes(saved)
        first_call(service(), "with the file")
        path.unlink()
        first_call(service(preload=preload), "preload, no file")
        path.write_bytes(saved)
    store.shutdown()


def _fit(df: Any) -> dict[str, tuple[np.ndarray, ...]]:
    fc = EnsembleForecaster(freq="300s", level=95.0, config=EnsembleConfig.bulk())
    fc.forecast(df, h=2016)
    return {str(k): (r.yhat.copy(), r.lower.copy(), r.upper.copy()) for k, r in fc.results_.items()}


def pool() -> None:
    import msgspec

    from analytics.service.config import default_config
    from analytics.service.models import forecast_frame
    from analytics.service.series import load_series

    store = _store()
    spec = msgspec.structs.replace(default_config().queries["requests_rate"], step="5m")
    df = forecast_frame(load_series(store, spec, "acme", NOW - 14 * 86_400, NOW))
    store.shutdown()
    ids = sorted(df["unique_id"].unique())
    _fit(df[df["unique_id"] == ids[0]])  # this process warm
    for method in ("fork", "spawn"):
        t = time.perf_counter()
        seq = _fit(df)
        t_seq = time.perf_counter() - t
        t = time.perf_counter()
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method)) as ex:
            list(ex.map(_fit, [df[df["unique_id"] == ids[0]]] * 2))  # start the workers, import, warm
            t_start = time.perf_counter() - t
            t = time.perf_counter()
            parts = list(ex.map(_fit, [df[df["unique_id"].isin(ids[i::2])] for i in range(2)]))
            t_pool = time.perf_counter() - t
        par = {k: v for p in parts for k, v in p.items()}
        same = all(all(np.array_equal(a, b) for a, b in zip(seq[k], par[k], strict=True)) for k in seq)
        print(f"pool ({method}): in-process fits {t_seq:.2f} s; 2 workers {t_pool:.2f} s (+ {t_start:.2f} s to start "
              f"and warm them); bit-identical: {same}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pool", action="store_true", help="also time the fits in a pool of 2 processes")
    ap.add_argument("--restart", action="store_true", help="only: the first call after a restart, with and without")
    args = ap.parse_args()
    if args.restart:
        restart()
        return
    run(False)
    run(True)
    if args.pool:
        pool()


if __name__ == "__main__":
    main()
