"""``hub forecast`` command line: the good path and every bad input (exit 2, clear message)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.forecast.cli import main


def _write(path: Path, n: int = 24 * 10, freq: str = "h", drop: tuple[int, ...] = ()) -> Path:
    t = np.arange(n)
    y = 100 + 20 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(0).normal(0, 2, n)
    df = pd.DataFrame({"ds": pd.date_range("2024-03-01", periods=n, freq=freq), "y": y.round(3)})
    df.drop(index=list(drop)).to_csv(path, index=False)
    return path


def test_good_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _write(tmp_path / "in.csv", drop=(30, 31))
    out = tmp_path / "out.csv"
    assert main(["--input", str(src), "--horizon", "1d", "--level", "90", "--output", str(out)]) == 0
    result = pd.read_csv(out)
    assert list(result.columns) == ["ds", "yhat", "yhat_lower", "yhat_upper", "model"]
    assert len(result) == 24 and result["ds"].iloc[0] == "2024-03-11 00:00:00"
    assert (result["yhat_lower"] <= result["yhat_upper"]).all()
    err = capsys.readouterr().err
    assert "2 missing timestamp(s)" in err and "frequency h" in err and "wrote 24 rows" in err


def test_daily_steps_horizon(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.csv", n=90, freq="D")
    out = tmp_path / "out.csv"
    assert main(["--input", str(src), "--horizon", "14", "--output", str(out)]) == 0
    assert len(pd.read_csv(out)) == 14


def _bad(tmp_path: Path, content: str | None) -> Path:
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    return path


def _hourly_text(n: int, value: str | None = None) -> str:
    rows = [f"2024-01-01 00:00:00,{value or 1}"]
    rows += [f"{pd.Timestamp('2024-01-01') + pd.Timedelta(hours=i)},{i}" for i in range(1, n)]
    return "ds,y\n" + "\n".join(rows) + "\n"


def _irregular_text() -> str:
    minutes = np.cumsum(np.random.default_rng(1).integers(1, 120, 60))
    stamps = pd.Timestamp("2024-01-01") + pd.to_timedelta(minutes, unit="min")
    return "ds,y\n" + "\n".join(f"{s},{i}" for i, s in enumerate(stamps)) + "\n"


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "input file not found"),
        ("ds,value\n2024-01-01,1\n", [], "missing column(s) y"),
        ("", [], "cannot read"),
        (_hourly_text(50, "abc"), [], "must be numeric: row 1 holds 'abc'"),
        (_irregular_text(), [], "irregular"),
        (_hourly_text(10), [], "series too short"),
        (_hourly_text(100), ["--horizon", "0"], "horizon"),
        (_hourly_text(100), ["--horizon", "soon"], "horizon"),
        (_hourly_text(100), ["--horizon", "90m"], "whole number"),
        (_hourly_text(100), ["--horizon", "500"], "longer than the history"),
        (_hourly_text(100), ["--level", "150"], "level must be a percentage"),
        (_hourly_text(100), ["--level", "high"], "not a number"),
        ("ds,y\nnot-a-date,1\n" + _hourly_text(40)[5:], [], "timestamps"),
    ],
)
def test_bad_input_exits_2_with_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, args: list[str], message: str
) -> None:
    src = _bad(tmp_path, content)
    argv = ["--input", str(src), "--output", str(tmp_path / "out.csv"), "--horizon", "24", *args]
    # later options win in argparse, so the case's own --horizon/--level override the default
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("hub forecast")
    assert not (tmp_path / "out.csv").exists()


def test_missing_required_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--input", "x.csv"]) == 2
    assert "required" in capsys.readouterr().err


def test_epoch_seconds_are_understood(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.csv")
    df = pd.read_csv(src)
    df["ds"] = pd.to_datetime(df["ds"]).astype("int64") // 10**9
    df.to_csv(src, index=False)
    out = tmp_path / "out.csv"
    assert main(["--input", str(src), "--horizon", "1d", "--output", str(out)]) == 0
    result = pd.read_csv(out)
    assert len(result) == 24 and result["ds"].iloc[0] == "2024-03-11 00:00:00"


def test_values_near_the_float_range_forecast_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # every model's validation error overflowed to inf; the inverse-error weights divided by zero
    src = tmp_path / "huge.csv"
    n = 500
    pd.DataFrame({"ds": pd.date_range("2026-01-01", periods=n, freq="h"),
                  "y": np.where(np.arange(n) % 2 == 0, 1e308, -1e308)}).to_csv(src, index=False)  # fmt: skip
    out = tmp_path / "out.csv"
    assert main(["--input", str(src), "--horizon", "48", "--output", str(out)]) == 0
    result = pd.read_csv(out)
    assert len(result) == 48 and np.isfinite(result["yhat"]).all()
    err = capsys.readouterr().err
    assert "some intervals could not be computed" in err and "RuntimeWarning" not in err


def test_an_infinite_value_is_left_out_like_an_empty_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # one inf made every seasonal model fail: a flat forecast of a daily sine
    src = _write(tmp_path / "in.csv", n=24 * 20)
    df = pd.read_csv(src)
    df["y"] = df["y"].astype(object)
    df.loc[200, "y"], df.loc[201, "y"] = "inf", ""
    df.to_csv(src, index=False)
    out = tmp_path / "out.csv"
    assert main(["--input", str(src), "--horizon", "24", "--output", str(out)]) == 0
    result = pd.read_csv(out)
    assert result["yhat"].max() - result["yhat"].min() > 20  # the daily swing (±20) is forecast
    err = capsys.readouterr().err
    assert "1 empty value(s) and 1 infinite value(s) in y left out" in err


def test_spreadsheet_exports_are_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a semicolon CSV with decimal commas, Latin-1 text and a header "DS;Y" were each refused
    # ("missing column(s) ds, y; found ds;y", "'utf-8' codec can't decode byte 0xe9")
    df = pd.read_csv(_write(tmp_path / "in.csv"))
    lines = ["DS;Y;note"] + [f"{t};{str(v).replace('.', ',')};caf\xe9" for t, v in zip(df["ds"], df["y"], strict=True)]
    src = tmp_path / "excel.csv"
    src.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    out = tmp_path / "out.csv"
    assert main(["--input", str(src), "--horizon", "1d", "--output", str(out)]) == 0
    result = pd.read_csv(out)
    assert len(result) == 24 and result["ds"].iloc[0] == "2024-03-11 00:00:00"
    assert 60 < result["yhat"].mean() < 140  # the level of the series (100), not of misread numbers
    assert "not UTF-8: read as Latin-1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("stamps", "message"),
    [
        (pd.date_range("2020-01-01", periods=40, freq="MS").strftime("%Y-%m-%d"), "monthly or yearly timestamps"),
        (pd.date_range("2024-01-01", periods=40, freq="D").strftime("%d/%m/%Y"), "day-first dates"),
    ],
)
def test_calendar_steps_and_day_first_dates_are_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stamps: pd.Index, message: str
) -> None:
    # both were "irregular timestamps: ... not whole multiples of ... 31 days" / "... are missing"
    src = tmp_path / "in.csv"
    pd.DataFrame({"ds": stamps, "y": np.arange(len(stamps), dtype=float)}).to_csv(src, index=False)
    assert main(["--input", str(src), "--horizon", "3", "--output", str(tmp_path / "out.csv")]) == 2
    assert message in capsys.readouterr().err


def test_the_detect_layout_timestamp_value_is_forecast_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each shared data file fitted only one of hub detect (timestamp,value) and hub forecast (ds,y)."""
    src = _write(tmp_path / "in.csv", n=24 * 3)
    pd.read_csv(src).rename(columns={"ds": "timestamp", "y": "value"}).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    assert main(["--input", str(src), "--horizon", "6h", "--output", str(out)]) == 0
    result = pd.read_csv(out)
    assert list(result.columns) == ["timestamp", "yhat", "yhat_lower", "yhat_upper", "model"]  # its own name kept
    assert len(result) == 6 and result["timestamp"].iloc[0] == "2024-03-04 00:00:00"
    assert f"read 72 rows from {src} (columns timestamp,value)" in capsys.readouterr().err


def test_ds_y_comes_first_and_named_columns_are_the_only_layout(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    src = _write(tmp_path / "in.csv", n=24 * 3)
    pd.read_csv(src).assign(timestamp="not a date", value="not a number").to_csv(src, index=False)
    out = tmp_path / "out.csv"
    assert main(["--input", str(src), "--horizon", "6h", "--output", str(out)]) == 0
    assert "(columns ds,y)" in capsys.readouterr().err
    pd.read_csv(src)[["timestamp", "value"]].to_csv(src, index=False)
    assert main(["--input", str(src), "--horizon", "1d", "--output", str(out), "--target-col", "value"]) == 2
    err = capsys.readouterr().err  # --target-col given: ds,value and nothing else
    assert err == (f"hub forecast: error: missing column(s) ds in {src}; found timestamp, value. Expected one row per "
                   "time step with a time column and a value column (ds,value)\n")  # fmt: skip


def test_a_wide_file_gets_a_short_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """M4's Hourly-train.csv (one series per row, columns V1..V961) had all 961 names printed on one line."""
    src = tmp_path / "wide.csv"
    src.write_text(",".join(f'"V{i}"' for i in range(1, 962)) + "\n" + ",".join(['"H1"'] + ["5"] * 960) + "\n")
    assert main(["--input", str(src), "--horizon", "48", "--output", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert err == (f"hub forecast: error: missing column(s) ds, y in {src}; found 961 columns: V1, V2, V3, V4, V5, "
                   "..., V961. Expected one row per time step with a time column and a value column (ds,y or "
                   "timestamp,value; --time-col and --target-col name others); this looks like a wide file (many "
                   "series side by side, or one per row): write the series to forecast or score as two columns\n")
    assert len(err) - len(str(src)) < 400 and "V480" not in err


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("{tmp}", "--output {tmp} is a directory; give a file name"),
        ("{src}", "--output {src} is the input file; write the result to another file"),
        ("{src}/out.csv", "cannot write {src}/out.csv: {src} is not a directory"),
    ],
)
def test_a_bad_output_is_refused_before_the_model_is_fitted(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch, output: str,
                                                            message: str) -> None:  # fmt: skip
    """``--output /nonexistent/dir/x.csv`` failed after the fit (4.9 s); now before the file is read."""
    from analytics.forecast import cli

    src = _write(tmp_path / "in.csv")
    before = src.read_bytes()
    monkeypatch.setattr(cli, "_read", lambda *a: pytest.fail("the input was read before the output was checked"))
    names = {"tmp": tmp_path, "src": src}
    assert main(["--input", str(src), "--horizon", "1d", "--output", output.format(**names)]) == 2
    assert capsys.readouterr().err == f"hub forecast: error: {message.format(**names)}\n"
    assert src.read_bytes() == before


def test_an_unwritable_output_is_refused_before_the_model_is_fitted(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Root writes anywhere that is not read-only, so the refusal is simulated; an existing output is opened
    without being changed."""
    import os

    from analytics.forecast import cli

    src, out = _write(tmp_path / "in.csv"), tmp_path / "out.csv"
    out.write_text("old\n")
    real_open = os.open

    def refuse(path: object, flags: int, *args: int) -> int:
        if str(path) == str(out):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refuse)
    monkeypatch.setattr(cli, "_read", lambda *a: pytest.fail("the input was read before the output was checked"))
    assert main(["--input", str(src), "--horizon", "1d", "--output", str(out)]) == 2
    assert capsys.readouterr().err == f"hub forecast: error: cannot write {out}: Permission denied\n"
    assert out.read_text() == "old\n"
    monkeypatch.setattr(os, "open", real_open)
    cli.check_output(out, src, create_parents=False)  # writable: checked, and left as it was
    assert out.read_text() == "old\n"


def test_missing_output_directories_are_created_as_hub_detect_does(tmp_path: Path) -> None:
    # hub forecast refused a missing directory that hub detect creates
    src, dst = _write(tmp_path / "in.csv"), tmp_path / "a" / "b" / "out.csv"
    assert main(["--input", str(src), "--horizon", "1d", "--output", str(dst)]) == 0
    assert list(pd.read_csv(dst).columns) == ["ds", "yhat", "yhat_lower", "yhat_upper", "model"]
