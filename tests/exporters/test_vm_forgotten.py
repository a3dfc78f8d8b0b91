"""Forgotten series across a restart of the VictoriaMetrics exporter: a series forgotten before the restart
that comes back gets its 0 sample, a new one does not (the samples as sent, decoded with the real prompb)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cramjam
import pytest

from exporters.victoriametrics import VictoriaMetricsExporter, VictoriaMetricsExporterConfig, convert, forgotten
from exporters.victoriametrics import exporter as vm_exporter
from exporters.victoriametrics.convert import PointsConverter
from exporters.victoriametrics.protos import remote_pb2
from tests.exporters._server import RecordingServer
from tests.exporters._util import FAST_RETRY, queue_in

NOW = 1_700_000_000.0


@pytest.fixture(autouse=True)
def _small_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new state base after 16 changed series (not 1,024), at most 100 forgotten series: fast tests."""
    monkeypatch.setattr(vm_exporter, "REBASE_MIN_SERIES", 16)
    monkeypatch.setattr(forgotten, "FORGOTTEN_LIMIT", 100)
    monkeypatch.setattr(convert, "FORGOTTEN_LIMIT", 100)


def _costs(teams: list[str], ts_s: float) -> dict[str, list[Any]]:
    n = len(teams)
    return {
        "tenant_id": ["t"] * n, "service_name": ["svc"] * n, "ts": [int(ts_s * 1e6)] * n,
        "name": ["llm.cost.usd"] * n, "kind": ["sum"] * n, "temporality": ["delta"] * n, "monotonic": [True] * n,
        "value": [1.0] * n, "unit": ["USD"] * n, "team": teams,
    }  # fmt: skip


def _exporter(tmp_path: Path, url: str, clock: list[float]) -> VictoriaMetricsExporter:
    cfg = VictoriaMetricsExporterConfig(
        endpoint=url, flush_interval=0.02, series_ttl="10m", sending_queue=queue_in(tmp_path / "q"),
        retry_on_failure=FAST_RETRY,
    )  # fmt: skip
    ex = VictoriaMetricsExporter(cfg)
    ex.converter.clock = lambda: clock[0]
    return ex


def _send(ex: VictoriaMetricsExporter, teams: list[str], clock: list[float]) -> None:
    ex.export("metric_points", _costs(teams, clock[0]))
    assert ex.flush(10)


def _sent(srv: RecordingServer, since: int) -> dict[str, list[tuple[int, float]]]:
    """team → its samples in the requests accepted from ``since`` on."""
    out: dict[str, list[tuple[int, float]]] = {}
    for req in srv.accepted[since:]:
        for ts in remote_pb2.WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(req.body))).timeseries:
            team = next(label.value for label in ts.labels if label.name == "team")
            out.setdefault(team, []).extend((s.timestamp, s.value) for s in ts.samples)
    return out


def _forget_some(tmp_path: Path, srv: RecordingServer, clock: list[float]) -> None:
    """40 series forgotten before a new state base (only forgotten.bin remembers them after a restart)
    and 10 after it (the acknowledgement's removals remember them); "keep" stays."""
    ex = _exporter(tmp_path, srv.url, clock)
    ex.start()
    try:
        _send(ex, [f"team-{i}" for i in range(40)], clock)
        clock[0] += 300
        _send(ex, [f"small-{i}" for i in range(10)] + ["keep"], clock)
        clock[0] += 400
        _send(ex, ["keep"], clock)  # the team-* are idle 700 s: forgotten, a new base without them
        assert ex.series_stats.expired == 40
        clock[0] += 400
        _send(ex, ["keep"], clock)  # the small-* are idle 800 s: forgotten, the removals in the delta
        assert ex.series_stats.expired == 50 and ex.series_stats.tracked == 1
    finally:
        ex.shutdown(5)
    assert (tmp_path / "q" / forgotten.FILE_NAME).is_file()


def test_a_series_forgotten_before_a_restart_comes_back_after_a_zero_sample_and_a_new_one_without(
    tmp_path: Path,
) -> None:
    clock = [NOW]
    with RecordingServer() as srv:
        _forget_some(tmp_path, srv, clock)
        clock[0] += 100
        restarted = _exporter(tmp_path, srv.url, clock)  # a new instance on the same directory
        restarted.start()
        try:
            since = len(srv.accepted)
            _send(restarted, ["team-5", "small-3", "keep", "brand-new"], clock)
            sent = _sent(srv, since)
        finally:
            restarted.shutdown(5)
    ms = int(clock[0] * 1000)
    assert sent["team-5"] == [(ms - 1, 0.0), (ms, 1.0)]  # forgotten before the last base
    assert sent["small-3"] == [(ms - 1, 0.0), (ms, 1.0)]  # forgotten since the last base
    assert sent["keep"] == [(ms, 4.0)]  # the running total continues across the restart
    assert sent["brand-new"] == [(ms, 1.0)]  # new: no 0 sample (it would inflate rate())


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage", forgotten.encode([1, 2, 3])[:-4], forgotten.encode([1, 2, 3])[:-1] + b"\xff"],
    ids=["empty", "garbage", "truncated", "bit-rot"],
)
def test_a_damaged_forgotten_file_is_a_warning_and_an_empty_set(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [NOW]
    with RecordingServer() as srv:
        _forget_some(tmp_path, srv, clock)
        (tmp_path / "q" / forgotten.FILE_NAME).write_bytes(content)
        clock[0] += 100
        restarted = _exporter(tmp_path, srv.url, clock)
        restarted.start()  # no crash
        try:
            assert "forgotten.bin is damaged" in caplog.text
            since = len(srv.accepted)
            _send(restarted, ["team-5", "small-3", "keep"], clock)
            sent = _sent(srv, since)
        finally:
            restarted.shutdown(5)
    ms = int(clock[0] * 1000)
    assert sent["team-5"] == [(ms, 1.0)]  # what the file held is lost: it starts like a new series
    assert sent["small-3"] == [(ms - 1, 0.0), (ms, 1.0)]  # the acknowledgement still had this removal
    assert sent["keep"] == [(ms, 4.0)]


def test_the_forgotten_set_is_bounded_and_saved_only_when_it_changed(tmp_path: Path) -> None:
    path = tmp_path / forgotten.FILE_NAME
    forgotten.save(path, range(forgotten.FORGOTTEN_LIMIT + 5), fsync=False)
    kept = forgotten.load(path)
    assert len(kept) == forgotten.FORGOTTEN_LIMIT and kept[0] == 5  # the oldest dropped
    assert path.stat().st_size == 16 + 8 * forgotten.FORGOTTEN_LIMIT and not list(tmp_path.glob("*.tmp"))
    c = PointsConverter()
    c.remember(kept)
    c.remember([1, 2])
    assert len(c.forgotten) == forgotten.FORGOTTEN_LIMIT and c.forgotten[-2:] == [1, 2]
    ex = VictoriaMetricsExporter(
        VictoriaMetricsExporterConfig(endpoint="http://127.0.0.1:9", sending_queue=queue_in(tmp_path / "q"))
    )
    (tmp_path / "q").mkdir()
    ex.converter.convert(_costs([f"team-{i}" for i in range(40)], NOW))
    assert ex.snapshot_state() is not None  # a new base, nothing forgotten: no file
    assert not (tmp_path / "q" / forgotten.FILE_NAME).exists()


def test_series_digests_are_the_same_in_every_process() -> None:
    """Python salts ``hash()`` of strings per process: a saved ``hash()`` would never match after a restart."""
    key = (("__name__", "llm_cost_usd_total"), ("team", "a"))
    code = f"from exporters.victoriametrics.forgotten import series_digest as d; print(d({key!r}))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True)
    assert int(out.stdout) == forgotten.series_digest(key)


def test_a_return_rolled_back_gets_its_zero_sample_again() -> None:
    """A failed flush rolls the state back to the acknowledgement (``discard_unacked_state``): the series
    that came back in it is missing from the state again, and its re-sent samples are the same."""
    now = [NOW]
    c = PointsConverter(clock=lambda: now[0], series_ttl=600)
    c.convert(_costs(["a"], now[0]))
    now[0] += 700
    c.convert(_costs(["b"], now[0]))  # "a" is forgotten
    acked = c.snapshot()
    now[0] += 1
    ms = int(now[0] * 1000)
    first = c.convert(_costs(["a"], now[0]))
    assert [s for samples in first.values() for s in samples] == [(ms - 1, 0.0), (ms, 1.0)]
    c.restore(acked)
    again = c.convert(_costs(["a"], now[0]))
    assert again == first
