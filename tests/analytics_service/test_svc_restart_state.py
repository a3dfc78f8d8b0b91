"""The anomaly runs' bookkeeping across a restart of the hub (a new store and service on the same data dir):
which series' ``anomaly_alert`` is up, when each series' alert was last written, and the newest input values
a run saw (late data). Before, all three lived in memory only: an alert up at the stop whose series then
vanished stayed firing until its rule's 10-minute look-back ran out, a bucket scored just before the stop
whose value changed kept its stale score, and every quiet series stored a second 0 on the first run."""

from __future__ import annotations

import base64
import doctest
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from analytics.service import AnalyticsService
from analytics.service.alert_state import RESCORE_POINTS
from analytics.service.series import Series
from hubcore.storage.embedded import EmbeddedStore

MODEL, QUERY = "anomaly_ensemble", "requests_rate"
TS = np.arange(0, 400 * 60, 60, dtype=np.int64) + 1_700_000_000
BUCKET = float(TS[-1])
HEADER = {"version": 1, "tenant": "t", "model": MODEL, "query": QUERY}


def _values() -> list[np.ndarray]:
    rng = np.random.default_rng(4)
    return [rng.normal(50, 2, TS.size) for _ in range(3)]


def _series(values: list[np.ndarray]) -> list[Series]:
    return [Series({"model": f"m{i}"}, TS, v.copy(), 60) for i, v in enumerate(values)]


class Hub:
    """A store and an analytics service on ``tmp_path`` that a test restarts (both stopped, both new),
    reading the series a test sets in ``data``."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path
        self.data: list[Series] = []
        self.store: EmbeddedStore | None = None
        self.svc: AnalyticsService | None = None
        self.start()

    def start(self) -> AnalyticsService:
        self.store = EmbeddedStore(self.path, wal_fsync=False)
        self.store.start()
        self.svc = AnalyticsService(None, self.store)
        self.svc.config.bulk_threshold = 2  # the vectorised path: fast, and scores the newest points
        self.svc.load = lambda *_: self.data  # type: ignore[method-assign]
        return self.svc

    def stop(self) -> None:
        if self.svc is not None:
            self.svc.shutdown()
        if self.store is not None:
            self.store.shutdown()
        self.svc = self.store = None

    def restart(self) -> AnalyticsService:
        self.stop()
        return self.start()

    def run(self, now: float) -> int:
        assert self.svc is not None
        rows, _ = self.svc.run_model("t", MODEL, QUERY, now)
        return rows

    def points(self, name: str, model: str, start_s: float, end_s: float | None = None) -> list[tuple[float, float]]:
        assert self.svc is not None
        return [(r["ts"], r["value"]) for r in self.svc.repo.read_series("t", name, query=QUERY, start_s=start_s,
                                                                          end_s=end_s) if r["labels"]["model"] == model]  # fmt: skip


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = Hub(tmp_path)
    try:
        yield h
    finally:
        h.stop()


def test_an_alert_up_at_a_restart_whose_series_vanishes_gets_its_0_on_the_first_run(hub: Hub) -> None:
    """m0 was announced when the hub stopped; after the restart the query no longer yields it: the first run
    writes its 0 (the alert resolves then), as the same service would have. Before, nothing was written and
    ``LLMAnomalyDetected`` went on firing until its 10-minute look-back ran out."""
    values = _values()
    values[0][-1] = 900.0
    hub.data = _series(values)
    now = BUCKET + 30
    hub.run(now)
    assert [v > 0 for _, v in hub.points("anomaly_alert", "m0", now)] == [True]
    hub.restart()
    hub.data = _series(values)[1:]  # m0 is gone
    hub.run(now + 60)
    assert [(t - now, v > 0) for t, v in hub.points("anomaly_alert", "m0", now)] == [(0, True), (60, False)]
    hub.run(now + 120)  # withdrawn once, not at every run
    assert len(hub.points("anomaly_alert", "m0", now)) == 2


def test_a_bucket_scored_before_a_restart_whose_value_changed_is_rescored_after_it(hub: Hub) -> None:
    """The run before the stop read a bucket a backfill had sent part of (a burst, as far as it could see);
    the first run after the restart reads the whole bucket: it is scored again, its points and anomaly
    record replaced. Before, the restarted service had no values to compare and kept the stale score."""
    base = _values()
    stale = [v.copy() for v in base]
    stale[0][-1] = 900.0
    hub.data = _series(stale)
    hub.run(BUCKET + 30)
    [(_, before)] = hub.points("anomaly_score", "m0", BUCKET, BUCKET + 1)
    assert before > 1.0
    svc = hub.restart()
    hub.data = _series(base)
    rows = hub.run(BUCKET + 90)
    [(_, score)] = hub.points("anomaly_score", "m0", BUCKET, BUCKET + 1)
    assert score < 1.0, score
    assert not [a for a in svc.repo.list_anomalies("t", start_s=BUCKET, end_s=BUCKET + 1)
                if a["labels"]["model"] == "m0"]  # fmt: skip
    # the changed bucket's 4 points and the 0 that withdraws m0's announcement; nothing of m1 and m2
    assert rows == 4 + 1
    assert [(t - BUCKET, v > 0) for t, v in hub.points("anomaly_alert", "m0", BUCKET)] == [(30, True), (90, False)]


def test_quiet_series_store_no_second_0_on_the_first_run_after_a_restart(hub: Hub) -> None:
    """A quiet series' 0 is stored once per ALERT_REFRESH_S, across a restart too (before, the first run
    after one stored a 0 for every series again)."""
    hub.data = _series(_values())
    now = BUCKET + 30
    hub.run(now)
    hub.restart()
    assert hub.run(now + 60) == 0
    for model in ("m0", "m1", "m2"):
        assert [t - now for t, _ in hub.points("anomaly_alert", model, now)] == [0]
    hub.run(now + 300)  # the refresh, five minutes after the last stored 0
    assert [t - now for t, _ in hub.points("anomaly_alert", "m1", now)] == [0, 300]


def _state_files(hub: Hub) -> list[Path]:
    return sorted((hub.path / "analytics" / "state").rglob("*.json"))


def test_the_state_file_holds_the_newest_points_of_each_series_only(hub: Hub) -> None:
    hub.data = _series(_values())
    hub.run(BUCKET + 30)
    [path] = _state_files(hub)
    saved = json.loads(path.read_text())
    assert (saved["tenant"], saved["model"], saved["query"]) == ("t", MODEL, QUERY)
    assert len(saved["series"]) == 3
    for ts, values in saved["series"].values():
        assert np.array_equal(_array(ts), TS[-RESCORE_POINTS:].astype(float)) and _array(values).size == RESCORE_POINTS
    assert {k: (t.tolist(), v.size) for k, (t, v) in hub.svc.run_state.load("t", MODEL, QUERY).items()} == {
        s.key: (TS[-RESCORE_POINTS:].astype(float).tolist(), RESCORE_POINTS) for s in hub.data
    }


def test_the_run_state_docstring_examples_run() -> None:
    from analytics.service import run_state

    assert doctest.testmod(run_state).failed == 0


def _array(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8")


def _b64(values: list[float]) -> str:
    return base64.b64encode(np.asarray(values, dtype="<f8").tobytes()).decode()


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_text("{not json"),
        lambda p: p.write_bytes(b""),  # (a rename not synced before a power loss)
        lambda p: p.write_bytes(b"\xff\xfe\x00garbage"),
        lambda p: p.write_text(json.dumps({**HEADER, "series": {"x": [_b64([1.0, 2.0]), _b64([1.0])]}})),
        lambda p: p.write_text(json.dumps({**HEADER, "series": {"x": ["not base64!", _b64([1.0])]}})),
        lambda p: p.write_text(json.dumps({**HEADER, "series": {"x": [[1.0], [1.0]]}})),
        lambda p: p.write_text(json.dumps({**HEADER, "series": {"x": 3}})),
        lambda p: p.write_text(json.dumps({**HEADER, "series": {"x": ["AAA=", "AAA="]}})),  # (2 bytes: no float)
        lambda p: p.write_text(json.dumps({**HEADER, "model": "other", "series": {}})),
        lambda p: p.write_text(json.dumps(["a", "list"])),
        lambda p: p.write_text(json.dumps({**HEADER, "version": 99})),
    ],
    ids=["not-json", "empty", "binary", "ragged", "not-base64", "lists", "not-pairs", "short-bytes", "another-key",
         "not-an-object", "other-version"],
)  # fmt: skip
def test_a_damaged_state_file_is_logged_and_the_service_starts_empty(
    hub: Hub, caplog: pytest.LogCaptureFixture, damage: Callable[[Path], None]
) -> None:
    base = _values()
    stale = [v.copy() for v in base]
    stale[0][-1] = 900.0
    hub.data = _series(stale)
    hub.run(BUCKET + 30)
    [path] = _state_files(hub)
    hub.stop()
    damage(path)
    hub.start()
    hub.data = _series(base)
    with caplog.at_level(logging.WARNING, logger="hub.analytics"):
        hub.run(BUCKET + 90)  # no exception: the run goes on without the late-data check
    assert any("analytics state" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
    [(_, score)] = hub.points("anomaly_score", "m0", BUCKET, BUCKET + 1)
    assert score > 1.0  # nothing to compare with: the stale score stays (as before this state was kept)
    assert json.loads(path.read_text())["version"] == 1  # written anew by that run


def test_the_hourly_prune_drops_gone_series_from_the_state_files_and_files_of_keys_gone(hub: Hub) -> None:
    """A series not seen for max(fit window, a day) leaves the file; a file all of whose series are gone is
    removed, also one that no run of this process loaded (a model removed from the config, a tenant with no
    data since the restart), and so are files that cannot be read or hold another key's state."""
    hub.data = _series(_values())
    hub.run(BUCKET + 30)
    later = [Series({"model": "m0"}, TS + 5 * 86_400, _values()[0], 60)]  # five days on, only m0 goes on
    hub.data = later
    svc = hub.restart()
    now = float(later[0].ts[-1]) + 30
    keep_s = svc.fit_window(MODEL, QUERY)
    assert 86_400 <= keep_s < 5 * 86_400

    def orphan(tenant: str, model: str, body: object) -> Path:
        path = svc.run_state.path(tenant, model, QUERY)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body if isinstance(body, str) else json.dumps(body))
        return path

    def state(tenant: str, model: str, **series: float) -> dict[str, object]:
        return {**HEADER, "tenant": tenant, "model": model,
                "series": {k: [_b64([t]), _b64([1.0])] for k, t in series.items()}}  # fmt: skip

    retired = orphan("t", "retired-model", state("t", "retired-model", old=now - 86_400 - 60))
    orphan("u", MODEL, state("u", MODEL, recent=now - 3600, old=now - keep_s - 60))
    fresh = orphan("w", MODEL, state("w", MODEL, recent=now - 3600))
    junk = orphan("v", MODEL, "{not json")
    elsewhere = orphan("x", MODEL, state("y", MODEL, recent=now - 60))  # another key's state
    before = fresh.read_bytes()
    hub.run(now)
    svc.run_once(now, tenants=[])  # the hourly prune
    assert list(json.loads(svc.run_state.path("t", MODEL, QUERY).read_text())["series"]) == [later[0].key]
    assert list(svc.run_state.load("u", MODEL, QUERY)) == ["recent"]
    assert fresh.read_bytes() == before  # nothing to drop: not written again
    assert not [p for p in (retired, junk, elsewhere) if p.exists()]
    kept = sorted(p.relative_to(svc.run_state.root).as_posix() for p in _state_files(hub))
    assert kept == [f"{tenant}/{MODEL}/{QUERY}.json" for tenant in "tuw"]
