"""Related series (``ModelSpec.related``): label matching, causal alignment, config errors, and a
joint anomaly that only the related series reveal — through the model runner and the scheduler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analytics.anomaly.iforest import relationship_z
from analytics.service.config import AnalyticsConfig, ModelSpec, QuerySpec, SchedulerSpec, config_from_dict
from analytics.service.models import run_anomaly
from analytics.service.related import MAX_PER_QUERY, aligned, belongs, related_columns
from analytics.service.series import Series
from hubcore.errors import ConfigError

T0 = 1_700_000_100 // 3600 * 3600


def series(labels: dict[str, str], values: Any, step: int = 300, t0: int = T0) -> Series:
    v = np.asarray(values, dtype=float)
    return Series(labels, t0 + step * np.arange(v.size, dtype=np.int64), v, step)


@pytest.mark.parametrize(
    ("target", "related", "expected"),
    [
        ({"environment": "prod", "model": "a"}, {"model": "a"}, True),  # shares model, agrees
        ({"environment": "prod", "model": "a"}, {"model": "b"}, False),  # another model
        ({"environment": "prod", "model": "a"}, {"environment": "prod", "model": "b"}, False),
        ({"model": "a"}, {}, True),  # a global related series goes with every target
        ({"model": "a"}, {"team": "search"}, False),  # nothing shared: unrelated groupings
        ({}, {"model": "a"}, False),
    ],
)  # fmt: skip
def test_which_related_series_belong_to_a_target(
    target: dict[str, str], related: dict[str, str], expected: bool
) -> None:
    assert belongs(series(target, [1.0]), series(related, [1.0])) is expected


def test_alignment_never_uses_a_bucket_still_open() -> None:
    target = series({"model": "a"}, np.arange(24.0), step=300)  # two hours of 5-minute buckets
    hourly = series({"model": "a"}, [100.0, 200.0], step=3600)
    out = aligned(target, hourly)
    # the first hour's value is known once that hour ended: from the bucket ending at T0 + 3600 on
    assert np.isnan(out[:11]).all() and (out[11:23] == 100.0).all() and out[23] == 200.0
    same = series({"model": "a"}, np.arange(24.0) * 2, step=300)
    np.testing.assert_array_equal(aligned(target, same), same.values)
    late = series({"model": "a"}, [7.0, 8.0], step=300, t0=T0 + 600)  # starts later: NaN before it
    assert np.isnan(aligned(target, late)[:2]).all() and list(aligned(target, late)[2:5]) == [7.0, 8.0, 8.0]


def test_related_columns_names_and_cap() -> None:
    target = series({"model": "a"}, np.zeros(4))
    one = {"errors": [series({"model": "a"}, [1, 2, 3, 4]), series({"model": "b"}, [9, 9, 9, 9])]}
    assert list(related_columns(target, one)) == ["related:errors"]
    many = {"tokens": [series({"model": "a", "kind": str(i)}, np.full(4, i)) for i in range(MAX_PER_QUERY + 2)]}
    cols = related_columns(target, many)
    assert len(cols) == MAX_PER_QUERY and all(c.startswith('related:tokens{"kind":') for c in cols)
    assert related_columns(target, {"errors": []}) == {} and related_columns(target, {}) == {}


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ({"class": "anomaly", "related": ["nope"], "params": {"detectors": ["iforest"]}}, "related.0"),
        ({"class": "anomaly", "related": ["q"]}, "related"),  # default detectors: none uses related series
        ({"class": "anomaly", "related": ["q"], "params": {"detectors": ["robust"]}}, "related"),
        ({"class": "forecast", "related": ["q"]}, "related"),
    ],
)  # fmt: skip
def test_related_config_errors_name_the_key(model: dict[str, Any], key: str) -> None:
    data = {"queries": {"q": {"event_type": "telemetry", "aggregation": "count"}}, "models": {"m": model}}
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    assert err.value.key == f"processors.analytics.models.m.{key}", str(err.value)


def joint_data(n: int = 2000, at: int = 1700) -> tuple[np.ndarray, np.ndarray]:
    """Latency and tokens driven by the same random load; at ``at`` latency is high while tokens are low
    — each value ordinary for its own series, the pair never seen."""
    rng = np.random.default_rng(5)
    load = rng.uniform(0.5, 1.5, n)
    latency, tokens = 800 * load + rng.normal(0, 10, n), 1000 * load + rng.normal(0, 12, n)
    latency[at], tokens[at] = 800 * 1.45, 1000 * 0.55
    return latency, tokens


def test_relationship_z_is_large_only_where_the_relationship_breaks() -> None:
    latency, tokens = joint_data()
    z = relationship_z(latency, tokens, 500)
    assert np.isnan(z[:40]).all()
    assert abs(z[1700]) > 20 and np.nanmedian(np.abs(z[600:1700])) < 1.5
    # causal: the score at t does not change when later points change
    changed = latency.copy()
    changed[1800:] *= 3
    np.testing.assert_array_equal(relationship_z(changed, tokens, 500)[:1800], z[:1800])


def test_a_joint_anomaly_is_found_only_with_the_related_series() -> None:
    latency, tokens = joint_data()
    lat, tok = series({"model": "m"}, latency), series({"model": "m"}, tokens)
    spec = ModelSpec(model_class="anomaly", params={"detectors": ["iforest"]}, related=["tokens"])
    flagged: dict[bool, set[int]] = {}
    for joint in (False, True):
        _, records, _ = run_anomaly("t", "latency", "joint", spec, [lat], None,
                                    related={"tokens": [tok]} if joint else None)  # fmt: skip
        flagged[joint] = {int((r.ts - T0) // 300) for r in records}
    assert 1700 in flagged[True] and 1700 not in flagged[False]
    other = series({"model": "other"}, tokens)  # another model's tokens are not this model's related series
    _, records, _ = run_anomaly("t", "latency", "joint", spec, [lat], None, related={"tokens": [other]})
    assert 1700 not in {int((r.ts - T0) // 300) for r in records}


def add_latency(store: Any, start: float, hours: int, models: tuple[str, ...]) -> None:
    """One request per model every 5 minutes for ``hours`` (``events`` rows, as the receivers write them)."""
    rng = np.random.default_rng(2)
    cols: dict[str, list[Any]] = {k: [] for k in ("tenant_id", "ts", "event_type", "name", "value", "status",
                                                  "model", "payload", "event_id")}  # fmt: skip
    for i in range(hours * 12):
        for m in models:
            t = start + i * 300 + 60
            for k, v in (("tenant_id", "default"), ("ts", int(t * 1e6)), ("event_type", "telemetry"),
                         ("name", "gen_ai.client.operation.duration"), ("value", float(rng.normal(800, 20))),
                         ("status", "ok"), ("model", m), ("payload", "{}"), ("event_id", f"{m}-{i}")):  # fmt: skip
                cols[k].append(v)
    store.append("events", cols)
    assert store.flush(10.0)


def test_the_scheduler_scores_a_query_with_its_related_series(tmp_path: Path, monkeypatch: Any) -> None:
    from analytics.service import AnalyticsService, models
    from hubcore.storage.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.01)
    store.start()
    try:
        now = float(T0 + 48 * 3600)
        add_latency(store, T0, 48, ("gpt-4o", "gpt-4o-mini"))
        cfg = AnalyticsConfig(
            queries={
                # one request per model and bucket: scored without a floor (a p95's default min_samples is 20)
                "latency": QuerySpec(event_type="telemetry", name="gen_ai.client.operation.duration", field="value",
                                     aggregation="p95", group_by=["model"], step="5m", min_samples=0),
                "requests": QuerySpec(event_type="telemetry", aggregation="count", group_by=["model"], step="1h"),
            },
            models={"joint": ModelSpec(model_class="anomaly", queries=["latency", "requests"], related=["requests"],
                                       params={"detectors": ["robust", "iforest"], "min_periods": 30})},
            schedulers={"periodic": SchedulerSpec(fit_every="1h", infer_every="1m", fit_window="3d")},
        ).validate()  # fmt: skip
        seen: list[tuple[str, dict[str, tuple[int, float]]]] = []
        real = models.score_series

        def spy(detector: Any, s: Series, related: Any = None) -> Any:
            cols = {name: (int(np.isnan(col).sum()), float(col[-1])) for name, col in (related or {}).items()}
            seen.append((s.labels["gen_ai_request_model"], cols))
            return real(detector, s, related)

        monkeypatch.setattr(models, "score_series", spy)
        svc = AnalyticsService(cfg, store, clock=lambda: now)
        stats = svc.run_once(now, force=True)
        assert stats["runs"] == 2 and stats["rows"] > 0
        assert svc.m_runs.labels("joint", "error")._value.get() == 0
        # each model's latency got its own model's hourly request count (12, not both models' 24), known
        # once its hour ended: over the 3-day window the day before the first event has none (no data, not
        # zero requests: 288 buckets) and the first hour's first 11 buckets lack it; the requests query is
        # never its own related series
        assert seen == [("gpt-4o", {"related:requests": (299, 12.0)}), ("gpt-4o-mini", {"related:requests": (299, 12.0)}),
                        ("gpt-4o", {}), ("gpt-4o-mini", {})]  # fmt: skip
    finally:
        store.shutdown()


def test_counts_are_zero_filled_only_from_the_first_data_on(tmp_path: Path) -> None:
    """Before the query's first event the hub had nothing: those buckets are no data (NaN), not zero
    requests; after it, a quiet bucket of a group is 0 (a fresh install or a backfill must not look like
    days of zero traffic to the forecasters)."""
    from analytics.service.series import load_series
    from hubcore.storage.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.01)
    store.start()
    try:
        add_latency(store, T0, 6, ("gpt-4o",))
        add_latency(store, T0 + 3 * 3600, 3, ("gpt-4o-mini",))
        spec = QuerySpec(event_type="telemetry", aggregation="count", group_by=["model"], step="1h")
        got = {s.labels["gen_ai_request_model"]: s.values for s in
               load_series(store, spec, "default", T0 - 6 * 3600, T0 + 6 * 3600)}  # fmt: skip
        assert np.isnan(got["gpt-4o"][:6]).all() and (got["gpt-4o"][6:] == 12).all()
        mini = got["gpt-4o-mini"]
        assert np.isnan(mini[:6]).all() and (mini[6:9] == 0).all() and (mini[9:] == 12).all()
    finally:
        store.shutdown()
