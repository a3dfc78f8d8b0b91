"""The benchmark's evaluation series: real-trace series carry their injected anomaly inside the window;
noise series have none."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from anomaly_series import (
    M4_KINDS,
    M4_ROOT,
    NOISE_KINDS,
    TRACE_KINDS,
    TRACES_ROOT,
    m4_bases,
    m4_series,
    noise_series,
    trace_bases,
    trace_series,
)

needs_traces = pytest.mark.skipif(
    not (TRACES_ROOT / "AzureLLMInferenceTrace_code.csv").exists(), reason="LLM traces not present"
)


@needs_traces
def test_trace_series_cover_every_base_and_kind_and_label_the_injection() -> None:
    bases = trace_bases()
    assert len(bases) == 11
    seen = set()
    for seed in range(len(bases) * len(TRACE_KINDS)):
        frame, windows, kind = trace_series(seed)
        name, what = kind.rsplit("-", 1)
        seen.add((name, what))
        recorded = bases[name]
        assert list(frame.columns) == ["timestamp", "value"] and len(frame) == recorded.size
        assert (np.diff(frame["timestamp"].to_numpy()).astype("timedelta64[s]").astype(int) == 300).all()
        changed = np.flatnonzero(frame["value"].to_numpy() != recorded)
        if what == "none":
            assert windows == [] and changed.size == 0
            continue
        assert len(windows) == 1
        start, end = (pd.Timestamp(t) for t in windows[0])
        first = frame["timestamp"].iloc[changed[0]] if changed.size else None
        if what == "outage" and changed.size == 0:
            continue  # the outage fell on a stretch that was already silent
        assert first is not None and start <= first <= end
    assert len(seen) == len(bases) * len(TRACE_KINDS)


def test_noise_series_have_no_window_and_are_deterministic() -> None:
    kinds = set()
    for seed in range(len(NOISE_KINDS)):
        frame, windows, kind = noise_series(seed)
        kinds.add(kind)
        assert windows == [] and len(frame) == 4000 and np.isfinite(frame["value"]).all()
        again, _, _ = noise_series(seed)
        pd.testing.assert_frame_equal(frame, again)
    assert kinds == set(NOISE_KINDS)


needs_m4 = pytest.mark.skipif(not (M4_ROOT / "Hourly-train.csv").exists(), reason="M4 hourly set not present")


@needs_m4
def test_m4_series_are_real_hourly_series_with_the_injection_inside_the_window() -> None:
    bases = m4_bases()
    assert len(bases) == 414 and all(748 <= b.size <= 1008 for b in bases)
    kinds = set()
    for seed in range(2 * len(M4_KINDS)):
        frame, windows, kind = m4_series(seed)
        what = kind.split("-", 1)[1]
        kinds.add(what)
        recorded = bases[(37 * seed) % len(bases)]
        assert len(frame) == recorded.size
        assert (np.diff(frame["timestamp"].to_numpy()).astype("timedelta64[s]").astype(int) == 3600).all()
        changed = np.flatnonzero(frame["value"].to_numpy() != recorded)
        if what == "none":
            assert windows == [] and changed.size == 0
            continue
        assert len(windows) == 1 and changed.size > 0
        start, end = (pd.Timestamp(t) for t in windows[0])
        assert start <= frame["timestamp"].iloc[changed[0]] <= end
        if what in ("spike", "dip"):
            assert changed.size == 1
        again, _, _ = m4_series(seed)
        pd.testing.assert_frame_equal(frame, again)
    assert kinds == set(M4_KINDS)


def test_benchmark_names_the_data_it_cannot_find(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import anomaly_eval

    with pytest.raises(SystemExit) as exc:
        anomaly_eval.main(["--root", str(tmp_path), "--quick"])
    assert exc.value.code == 2 and "NAB (--root) not found" in capsys.readouterr().err
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "combined_windows.json").write_text("{}")
    monkeypatch.setattr(anomaly_eval, "M4_ROOT", tmp_path / "m4")
    with pytest.raises(SystemExit) as exc:
        anomaly_eval.main(["--root", str(tmp_path), "--m4", "6"])
    assert exc.value.code == 2 and "--m4: the M4 hourly set (HUB_M4_HOURLY) not found" in capsys.readouterr().err
    monkeypatch.setattr(anomaly_eval, "TRACES_ROOT", tmp_path / "traces")
    with pytest.raises(SystemExit) as exc:
        anomaly_eval.main(["--root", str(tmp_path), "--traces", "5"])
    assert exc.value.code == 2 and "--traces: the LLM traces (HUB_LLM_TRACES) not found" in capsys.readouterr().err


def test_benchmark_scores_any_nab_categories_and_sums_the_real_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--categories all`` (e.g. a full NAB checkout): one group per folder, ``real`` over the real ones."""
    import json

    import anomaly_eval

    windows: dict[str, list[list[str]]] = {}
    rng = np.random.default_rng(0)
    ts = pd.date_range("2024-01-01", periods=1500, freq="5min")
    for category, spike_at in (("realFoo", 1200), ("realBar", 1300)):
        values = 50 + rng.normal(0, 1, ts.size)
        values[spike_at : spike_at + 6] += 40  # a clear level jump inside the window
        (tmp_path / "data" / category).mkdir(parents=True)
        pd.DataFrame({"timestamp": ts, "value": values}).to_csv(tmp_path / "data" / category / "s.csv", index=False)
        windows[f"{category}/s.csv"] = [[str(ts[spike_at - 20]), str(ts[spike_at + 40])]]
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    assert anomaly_eval.main(["--root", str(tmp_path), "--categories", "all"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ens = report["ensemble"]
    assert set(ens) == {"realBar", "realFoo", "real", "overall"} and report["files"] == 2
    assert ens["realFoo"]["tp"] == ens["realBar"]["tp"] == 1  # each jump is found ...
    assert ens["real"]["tp"] == ens["overall"]["tp"] == 2  # ... and summed
    with pytest.raises(SystemExit) as exc:
        anomaly_eval.main(["--root", str(tmp_path), "--categories", "realFoo,realNope"])
    assert exc.value.code == 2 and "no folder realNope" in capsys.readouterr().err
