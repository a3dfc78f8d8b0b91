"""The column-wise streaming window: the same rows, limits and eviction order as one tuple per event."""

from __future__ import annotations

import gc
import random
from collections import Counter, OrderedDict, deque
from typing import Any

import pandas as pd
import pytest

from analytics.correlation import CorrelationEngine, EngineConfig
from analytics.correlation.engine import AnalysisResult
from analytics.correlation.frame import COLUMNS
from analytics.correlation.window import BLOCK_ROWS, EventWindow

_CID = COLUMNS.index("correlation_id")
_TS = COLUMNS.index("ts")


class _TupleWindows:
    """The window as it was held before (one tuple per event), to compare with."""

    def __init__(self, cfg: EngineConfig, wall_us: int) -> None:
        self.cfg, self.wall_us = cfg, wall_us
        self.windows: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.dropped = 0

    def _window(self, tenant: str) -> dict[str, Any]:
        win = self.windows.get(tenant)
        if win is None:
            win = self.windows[tenant] = {"rows": deque(), "per_key": Counter(), "max_ts": 0, "dropped": 0}
            while len(self.windows) > self.cfg.max_tenants:
                self.windows.popitem(last=False)
        else:
            self.windows.move_to_end(tenant)
        return win

    def _evict(self, win: dict[str, Any]) -> None:
        horizon = win["max_ts"] - int(self.cfg.window_s * 1e6)
        rows, per_key = win["rows"], win["per_key"]
        while rows and (len(rows) > self.cfg.max_events_per_window or int(rows[0][_TS] or 0) < horizon):
            key = rows.popleft()[_CID]
            if key is not None:
                per_key[key] -= 1
                if per_key[key] <= 0:
                    del per_key[key]

    def ingest(self, columns: dict[str, list[Any]]) -> int:
        n = len(columns["event_id"])
        cols = [columns.get(c) or [None] * n for c in COLUMNS]
        kept = 0
        for tenant, row in zip(columns["tenant_id"], zip(*cols, strict=True), strict=True):
            win = self._window(tenant or "default")
            key = row[_CID]
            if key is not None:
                if win["per_key"][key] >= self.cfg.max_events_per_key:
                    win["dropped"] += 1
                    self.dropped += 1
                    continue
                win["per_key"][key] += 1
            win["rows"].append(row)
            win["max_ts"] = max(win["max_ts"], min(int(row[_TS] or 0), max(self.wall_us, win["max_ts"])))
            kept += 1
        for win in self.windows.values():
            self._evict(win)
        return kept

    def flush(self, now_us: int) -> dict[str, list[tuple[str, int]]]:
        out = {}
        for tenant, win in self.windows.items():
            win["max_ts"] = max(win["max_ts"], now_us)
            self._evict(win)
            horizon = win["max_ts"] - int(self.cfg.window_s * 1e6)
            kept = [r for r in win["rows"] if int(r[_TS] or 0) >= horizon]
            win["rows"] = deque(kept)
            win["per_key"] = Counter(r[_CID] for r in kept if r[_CID] is not None)
            if kept:
                out[tenant] = [(r[0], int(r[_TS] or 0)) for r in kept]
        return out

    def sizes(self) -> dict[str, tuple[int, int]]:
        return {t: (len(w["rows"]), len(w["per_key"])) for t, w in self.windows.items()}


def _batch(rng: random.Random, start: int, wall_us: int) -> dict[str, list[Any]]:
    n = rng.choice([1, 3, 40, 300, 700])
    tenants = [f"t{rng.randrange(5)}" for _ in range(n)] if rng.random() < 0.5 else [f"t{rng.randrange(5)}"] * n
    if rng.random() < 0.1:
        tenants[0] = None  # the default tenant
    ts: list[Any] = [wall_us - rng.randrange(0, 90_000_000) for _ in range(n)]
    if rng.random() < 0.2:
        ts[rng.randrange(n)] = None  # a row without a time stamp
    if rng.random() < 0.1:
        ts[0] = wall_us + 3_000_000_000  # stamped ahead of the clock
    if rng.random() < 0.1:
        ts = [float(t) if t is not None else None for t in ts]
    keys = [f"k{rng.randrange(30)}" if rng.random() < 0.8 else None for _ in range(n)]
    cols: dict[str, list[Any]] = {
        "tenant_id": tenants, "event_id": [f"e{start + i}" for i in range(n)], "ts": ts, "correlation_id": keys,
        "source_module": ["llm-observatory"] * n, "event_type": ["telemetry"] * n, "status": ["ok"] * n,
    }  # fmt: skip
    return cols


def test_window_matches_tuple_window_on_random_batches(monkeypatch: Any) -> None:
    wall_us = 1_900_000_000_000_000
    monkeypatch.setattr("analytics.correlation.engine.time.time", lambda: wall_us / 1e6)
    cfg = EngineConfig(max_events_per_window=2_000, max_events_per_key=15, max_tenants=4)
    engine = CorrelationEngine(None, cfg)
    frames: dict[str, pd.DataFrame] = {}

    def run(df: pd.DataFrame, tenant: str, **_: Any) -> AnalysisResult:
        frames[tenant] = df
        return AnalysisResult([], [], events=len(df))

    monkeypatch.setattr(engine, "_run", run)
    ref = _TupleWindows(cfg, wall_us)
    rng = random.Random(7)
    start = 0
    for step in range(300):
        cols = _batch(rng, start, wall_us)
        start += len(cols["event_id"])
        snapshot = {k: list(v) for k, v in cols.items()}
        assert engine.ingest(cols) == ref.ingest(cols)
        assert cols == snapshot  # the caller's lists are left as they were
        assert engine.window_sizes() == ref.sizes()
        assert [w.dropped for w in engine._windows.values()] == [w["dropped"] for w in ref.windows.values()]
        if step % 7 == 6:
            frames.clear()
            now = wall_us + rng.choice([0, 20_000_000, 50_000_000])
            for w in engine._windows.values():
                w.dirty = True
            engine.flush_results(now_us=now)
            want = ref.flush(now)
            assert {t: list(zip(df["event_id"], df["ts"], strict=True)) for t, df in frames.items()} == want
            assert engine.window_sizes() == ref.sizes()
    assert ref.dropped > 0  # the per-key cap was exercised


def test_small_batches_share_blocks_and_nothing_per_event_is_tracked() -> None:
    engine = CorrelationEngine(None, EngineConfig(max_events_per_key=100_000))
    for i in range(3 * BLOCK_ROWS):
        engine.ingest({"tenant_id": ["t"], "event_id": [f"e{i}"], "ts": [i], "correlation_id": [f"k{i % 9}"],
                       "payload": ['{"a": 1}']})  # fmt: skip
    win = engine._windows["t"]
    assert isinstance(win, EventWindow)
    assert len(win) == 3 * BLOCK_ROWS and len(win.blocks) <= 4
    assert engine.window_sizes() == {"t": (3 * BLOCK_ROWS, 9)}
    held = [v for b in win.blocks for col in b.cols for v in col]
    assert not any(gc.is_tracked(v) for v in held)  # the garbage collector sees a few lists, not the events


def test_eviction_splits_a_block_and_keeps_key_counts() -> None:
    cfg = EngineConfig(max_events_per_window=1_500, max_events_per_key=10_000)
    engine = CorrelationEngine(None, cfg)
    engine.ingest({"tenant_id": ["t"] * 1_000, "event_id": [f"a{i}" for i in range(1_000)], "ts": list(range(1_000)),
                   "correlation_id": ["x"] * 500 + ["y"] * 500})  # fmt: skip
    engine.ingest({"tenant_id": ["t"] * 1_000, "event_id": [f"b{i}" for i in range(1_000)], "ts": list(range(1_000)),
                   "correlation_id": ["z"] * 1_000})  # fmt: skip
    assert engine.window_sizes() == {"t": (1_500, 2)}  # the first 500 (all of key x) are gone
    assert engine._windows["t"].per_key == Counter({"y": 500, "z": 1_000})


def test_a_row_exactly_window_s_behind_the_newest_stays() -> None:
    engine = CorrelationEngine(None, EngineConfig(window_s=60.0))
    engine.ingest({"tenant_id": ["t", "t"], "event_id": ["a", "b"], "ts": [0, 60_000_000]})
    assert engine.window_sizes() == {"t": (2, 0)}
    engine.ingest({"tenant_id": ["t"], "event_id": ["c"], "ts": [60_000_001]})
    assert engine.window_sizes() == {"t": (2, 0)}  # "a" is now older than window_s behind "c"


def test_columns_of_different_lengths_are_refused() -> None:
    engine = CorrelationEngine(None)
    with pytest.raises(ValueError, match="differ in length"):
        engine.ingest({"tenant_id": ["t", "t"], "event_id": ["a", "b"], "ts": [1]})
    assert engine.window_sizes() == {}
