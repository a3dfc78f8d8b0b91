"""``hub detect``: bad inputs exit 2 with a clear message on stderr; a good file gets the new columns."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analytics.anomaly.cli import main


def write_series(path, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    values = 5 + rng.normal(0, 0.3, n)
    values[500] += 6
    df = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=n, freq="5min"), "value": values})
    df.to_csv(path, index=False)
    return df


def test_good_path_writes_columns(tmp_path):
    src, dst = tmp_path / "in.csv", tmp_path / "out" / "scored.csv"
    df = write_series(src)
    assert main(["--input", str(src), "--output", str(dst)]) == 0
    out = pd.read_csv(dst)
    assert list(out.columns) == ["timestamp", "value", "anomaly_score", "is_anomaly", "severity", "detected_by"]
    assert len(out) == len(df)
    assert out.is_anomaly.iloc[500]
    assert out.severity.iloc[500] != "none"
    assert out.detected_by.iloc[500]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ("", "empty"),
        ("timestamp,value\n", "no rows"),
        ("time,value\n2024-01-01,1\n", "missing column(s) timestamp"),
        ("timestamp,amount\n2024-01-01,1\n", "missing column(s) value"),
        ("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:05,abc\n", "non-numeric value 'abc' at data row 2"),
        ("timestamp,value\n2024-01-01 00:00,1\nnot a date,2\n", "unparseable timestamp"),
    ],
)
def test_bad_inputs_exit_2(tmp_path, capsys, content, message):
    src = tmp_path / "in.csv"
    if content is not None:
        src.write_text(content)
    code = main(["--input", str(src), "--output", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.startswith("hub detect: error:")
    assert not (tmp_path / "out.csv").exists()


def test_missing_arguments_exit_2(capsys):
    assert main([]) == 2
    assert "--input" in capsys.readouterr().err


def test_says_what_it_read_and_wrote(tmp_path, capsys):
    """It printed nothing on success (only files of 20,000 rows or more got a line), while hub forecast says
    what it read, its model and what it wrote."""
    src, dst = tmp_path / "in.csv", tmp_path / "o.csv"
    write_series(src)
    assert main(["--input", str(src), "--output", str(dst), "--detectors", "robust,seasonal"]) == 0
    flagged = int(pd.read_csv(dst).is_anomaly.sum())
    assert flagged >= 1
    read, wrote = capsys.readouterr().err.splitlines()
    assert read == f"hub detect: read 600 rows from {src} (columns timestamp,value); scoring with robust, seasonal"
    assert wrote.startswith(f"hub detect: wrote 600 rows to {dst}: {flagged} anomalies flagged (is_anomaly); scored in ")
    assert "points/s" in wrote
    assert main(["--input", str(src), "--output", str(dst), "--detectors", "robust", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_the_forecast_layout_ds_y_is_scored_too(tmp_path, capsys):
    """Each shared data file fitted only one of hub detect (timestamp,value) and hub forecast (ds,y)."""
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    write_series(src).rename(columns={"timestamp": "ds", "value": "y"}).assign(tokens=1.0).to_csv(src, index=False)
    assert main(["--input", str(src), "--output", str(dst), "--related", "tokens"]) == 0
    out = pd.read_csv(dst)
    assert list(out.columns) == ["ds", "y", "tokens", "anomaly_score", "is_anomaly", "severity", "detected_by"]
    assert out.is_anomaly.iloc[500]
    assert "(columns ds,y; related tokens)" in capsys.readouterr().err
    # the value column is not a related column, whichever layout names it
    assert main(["--input", str(src), "--output", str(dst), "--related", "y"]) == 2
    assert "--related column 'y' is not a related column" in capsys.readouterr().err


def test_timestamp_value_comes_first_when_a_file_has_both_layouts(tmp_path, capsys):
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    df = write_series(src)
    df.assign(ds="not a date", y="not a number").to_csv(src, index=False)
    assert main(["--input", str(src), "--output", str(dst), "--detectors", "robust"]) == 0
    assert "(columns timestamp,value)" in capsys.readouterr().err
    assert pd.read_csv(dst).is_anomaly.iloc[500]


def test_an_unwritable_output_is_refused_before_the_file_is_read(tmp_path, capsys, monkeypatch):
    """It was found only when the scored file was written, after the detectors ran. Root writes anywhere that
    is not read-only, so the refusal is simulated; reading the series would fail the test."""
    import os

    import analytics.anomaly.cli as cli

    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    write_series(src)
    real_open = os.open

    def refuse(path, flags, *args):
        if str(path) == str(dst):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refuse)
    monkeypatch.setattr(cli, "read_series", lambda path: pytest.fail("the input was read before the output checked"))
    assert main(["--input", str(src), "--output", str(dst)]) == 2
    assert capsys.readouterr().err == f"hub detect: error: cannot write {dst}: Permission denied\n"
    assert not dst.exists()


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("{src}", "--output {src} is the input file; write the result to another file"),
        ("{tmp}", "--output {tmp} is a directory; give a file name"),
        ("{src}/x.csv", "cannot write {src}/x.csv: {src} is not a directory"),
        ("{src}/a/b/x.csv", "cannot write {src}/a/b/x.csv: {src} is not a directory"),
    ],
)
def test_bad_outputs_exit_2_before_scoring(tmp_path, capsys, monkeypatch, output, message):
    import analytics.anomaly.cli as cli

    src = tmp_path / "in.csv"
    write_series(src)
    before = src.read_bytes()
    monkeypatch.setattr(cli, "read_series", lambda path: pytest.fail("the input was read before the output checked"))
    names = {"src": src, "tmp": tmp_path}
    assert main(["--input", str(src), "--output", output.format(**names)]) == 2
    assert capsys.readouterr().err == f"hub detect: error: {message.format(**names)}\n"
    assert src.read_bytes() == before


def test_missing_output_directories_are_still_created(tmp_path):
    src, dst = tmp_path / "in.csv", tmp_path / "a" / "b" / "out.csv"
    write_series(src)
    assert main(["--input", str(src), "--output", str(dst), "--detectors", "robust", "--quiet"]) == 0
    assert len(pd.read_csv(dst)) == 600


def test_unsorted_rows_keep_their_order(tmp_path):
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    df = write_series(src)
    shuffled = df.sample(frac=1.0, random_state=1)
    shuffled.to_csv(src, index=False)
    assert main(["--input", str(src), "--output", str(dst)]) == 0
    out = pd.read_csv(dst)
    np.testing.assert_allclose(out.value.to_numpy(), shuffled.value.to_numpy())
    spike = out.index[out.timestamp == str(df.timestamp.iloc[500])][0]
    assert out.is_anomaly.iloc[spike]


@pytest.mark.parametrize("layout", ["epoch_s", "epoch_ms", "iso_z"])
def test_epoch_and_offset_timestamps_are_understood(tmp_path, layout):
    """Epoch seconds read as nanoseconds would make 'one day of points' absurd and silence every alert."""
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    df = write_series(src)
    ts = pd.to_datetime(df["timestamp"])
    if layout == "epoch_s":
        df["timestamp"] = ts.astype("int64") // 10**9
    elif layout == "epoch_ms":
        df["timestamp"] = ts.astype("int64") // 10**6
    else:
        df["timestamp"] = ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    df.to_csv(src, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no timezone or conversion warnings either
        assert main(["--input", str(src), "--output", str(dst)]) == 0
    out = pd.read_csv(dst)
    assert out["timestamp"].astype(str).tolist() == df["timestamp"].astype(str).tolist()  # written back as given
    assert out.is_anomaly.iloc[500]


def test_values_near_the_float_range_score_without_warnings(tmp_path):
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    df = write_series(src)
    df["value"] = df["value"] * 1e299
    df.to_csv(src, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # overflow in bands and scales is handled
        assert main(["--input", str(src), "--output", str(dst)]) == 0
    assert len(pd.read_csv(dst)) == len(df)


def test_alternating_extremes_score_without_warnings(tmp_path):
    # ±1e308 made the recovery rule's |x - median| overflow (a RuntimeWarning on stderr)
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    ts = pd.date_range("2026-01-01", periods=3000, freq="5min")
    pd.DataFrame({"timestamp": ts, "value": np.where(np.arange(3000) % 2 == 0, 1e308, -1e308)}).to_csv(src, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert main(["--input", str(src), "--output", str(dst), "--detectors", "robust,seasonal"]) == 0


def test_duplicate_timestamps_are_scored_with_a_warning(tmp_path, capsys):
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    df = write_series(src)
    pd.concat([df, df.iloc[:40]]).to_csv(src, index=False)
    assert main(["--input", str(src), "--output", str(dst), "--detectors", "robust"]) == 0
    assert len(pd.read_csv(dst)) == len(df) + 40
    assert "warning: 40 duplicate timestamp(s) (merged files?)" in capsys.readouterr().err


def joint_csv(path, n: int = 2000, at: int = 1700) -> None:
    """latency and tokens from the same random load; at ``at`` the pair breaks (each value ordinary)."""
    rng = np.random.default_rng(5)
    load = rng.uniform(0.5, 1.5, n)
    latency, tokens = 800 * load + rng.normal(0, 10, n), 1000 * load + rng.normal(0, 12, n)
    latency[at], tokens[at] = 800 * 1.45, 1000 * 0.55
    ts = pd.date_range("2024-01-01", periods=n, freq="5min")
    pd.DataFrame({"timestamp": ts, "value": latency, "tokens": tokens, "note": "x"}).to_csv(path, index=False)


def test_related_columns_are_scored_jointly(tmp_path):
    src = tmp_path / "in.csv"
    joint_csv(src)
    alone, joint = tmp_path / "alone.csv", tmp_path / "joint.csv"
    assert main(["--input", str(src), "--output", str(alone), "--quiet"]) == 0
    assert main(["--input", str(src), "--output", str(joint), "--related", "tokens", "--quiet"]) == 0
    a, j = pd.read_csv(alone), pd.read_csv(joint)
    assert list(j.columns[:4]) == ["timestamp", "value", "tokens", "note"]  # the input's columns, kept
    assert j.anomaly_score.iloc[1700] > 1 > a.anomaly_score.iloc[1700]
    assert "iforest" in j.detected_by.iloc[1700]


@pytest.mark.parametrize(
    ("related", "message"),
    [
        ("nope", "--related column 'nope' is not a related column"),
        ("value", "--related column 'value'"),
        ("note", "non-numeric note 'x' at data row 1"),
    ],
)
def test_bad_related_columns_exit_2(tmp_path, capsys, related, message):
    src = tmp_path / "in.csv"
    joint_csv(src, n=50, at=40)
    assert main(["--input", str(src), "--output", str(tmp_path / "out.csv"), "--related", related]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("hub detect: error:")
    assert "found: tokens, note" in err or "non-numeric" in err


def test_detectors_option_chooses_the_ensemble(tmp_path):
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    write_series(src)
    assert main(["--input", str(src), "--output", str(dst), "--detectors", "robust, seasonal", "--quiet"]) == 0
    out = pd.read_csv(dst)
    assert out.is_anomaly.iloc[500]
    used = {name for cell in out.detected_by.dropna() for name in cell.split("|")}
    assert used and used <= {"robust", "seasonal"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("robust,bogus", "--detectors: unknown detector 'bogus'; choose from robust, seasonal"),
        ("robust,robust", "--detectors names a detector twice"),
    ],
)
def test_bad_detectors_exit_2(tmp_path, capsys, spec, message):
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    write_series(src)
    assert main(["--input", str(src), "--output", str(dst), "--detectors", spec]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hub detect: error:") and message in err
    assert not dst.exists()


def test_unavailable_detectors_are_skipped_with_a_warning(tmp_path, capsys, monkeypatch):
    from analytics.anomaly import AutoencoderDetector

    monkeypatch.setattr(AutoencoderDetector, "available", property(lambda self: False))
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    write_series(src)
    assert main(["--input", str(src), "--output", str(dst), "--detectors", "robust,autoencoder"]) == 0
    assert "warning: skipped (dependency not installed): autoencoder" in capsys.readouterr().err
    assert main(["--input", str(src), "--output", str(dst), "--detectors", "autoencoder"]) == 2
    assert "none of the chosen detectors can run here" in capsys.readouterr().err


def test_all_columns_adds_the_expected_range_and_explanation(tmp_path):
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    write_series(src)
    assert main(["--input", str(src), "--output", str(dst), "--all-columns", "--quiet"]) == 0
    out = pd.read_csv(dst)
    assert list(out.columns) == [
        "timestamp", "value", "anomaly_score", "is_anomaly", "severity", "detected_by",
        "confidence", "yhat", "yhat_lower", "yhat_upper", "explanation",
    ]  # fmt: skip
    row = out.iloc[500]
    assert row.value > row.yhat_upper and 0 < row.confidence <= 1
    assert "above the expected range" in row.explanation
    assert out.explanation[out.anomaly_score <= 1].isna().all()  # empty for ordinary points
