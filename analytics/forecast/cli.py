"""``hub forecast``: forecast one CSV series with the ensemble and write the forecast as CSV.

Usage::

    hub forecast --input spend.csv --horizon 7d --level 95 --output forecast.csv

    from analytics.forecast.cli import main
    main(["--input", "spend.csv", "--horizon", "168", "--output", "out.csv"])   # returns 0

Input: a CSV with columns ``ds`` (timestamps) and ``y`` (numbers), or ``timestamp`` and ``value`` (the layout
``hub detect`` reads; ``ds,y`` first when a file has both), at a regular frequency, which is
inferred (delimiter sniffed: ``,``, ``;`` with decimal commas, tab, ``|``; UTF-8, else Latin-1; column
names matched whatever their case and surrounding spaces); a few missing timestamps (up to 10 %) are re-inserted and linearly interpolated, duplicate
timestamps averaged, and both reported. Horizon: a number of steps, or a duration (``7d``, ``168h``,
``2w``). Output columns: ``ds,yhat,yhat_lower,yhat_upper,model``. Progress goes to stderr; bad input
(missing file or columns, non-numeric values, irregular frequency, a series too short, a bad horizon
or level, an output that cannot be written) is reported on stderr with exit status 2. ``--level``, the input
file's presence and columns (its header line), the horizon's syntax and the output path are checked before the
forecasting engine (pandas, statsforecast: seconds) is imported.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from analytics.cli_files import FileCheckError, check_output, find_layout, missing_columns, read_header
from analytics.forecast.arguments import ForecastInputError, split_horizon

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["build_parser", "main"]

PROG = "hub forecast"
#: The layouts read without --time-col/--target-col, in order of preference.
LAYOUTS: tuple[tuple[str, str], ...] = (("ds", "y"), ("timestamp", "value"))
#: What the input's delimiter is sniffed among.
DELIMITERS = ",;\t|"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Forecast a regular time series with a validated statsforecast ensemble."
    )
    parser.add_argument("--input", required=True, help="CSV file with columns ds,y (or timestamp,value)")
    parser.add_argument("--horizon", required=True, help="steps (e.g. 48) or a duration (7d, 168h, 2w)")
    parser.add_argument("--level", default="95", help="prediction interval level in percent (default 95)")
    parser.add_argument("--output", required=True, help="CSV file to write ds,yhat,yhat_lower,yhat_upper,model")
    parser.add_argument("--time-col", help="timestamp column (default ds, or timestamp with a value column)")
    parser.add_argument("--target-col", help="value column (default y, or value with a timestamp column)")
    return parser


def _progress(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _level(text: str) -> float:
    try:
        level = float(text)
    except ValueError:
        raise ForecastInputError(f"level {text!r} is not a number; give a percentage such as 95") from None
    if not 0 < level < 100:
        raise ForecastInputError(f"level must be a percentage between 0 and 100 (exclusive), got {text}")
    return level


def _csv_text(path: Path) -> tuple[str, str]:
    """The file's text (UTF-8, else Latin-1, as spreadsheets export it) and its delimiter (``,`` ``;`` tab ``|``)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        _progress(f"{path} is not UTF-8: read as Latin-1")
    try:
        delimiter = csv.Sniffer().sniff(text[:4096], delimiters=DELIMITERS).delimiter
    except csv.Error:
        delimiter = ","
    return text, delimiter


def layouts(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The ``(time, value)`` column pairs to look for: ``--time-col``/``--target-col`` when given (the other
    one defaulting to ``ds``/``y``), else :data:`LAYOUTS`."""
    if args.time_col is None and args.target_col is None:
        return list(LAYOUTS)
    return [(args.time_col or "ds", args.target_col or "y")]


def _numbers(col: pd.Series, decimal_comma: bool) -> pd.Series:
    """``col`` as floats (non-numbers as NaN); ``1,5`` as 1.5 where the delimiter is not a comma."""
    import pandas as pd

    values = pd.to_numeric(col, errors="coerce")
    if decimal_comma and col.dtype == object:
        commas = pd.to_numeric(col.astype(str).str.replace(",", ".", regex=False), errors="coerce")
        values = values.where(values.notna(), commas)
    return values


def _check_input(path: Path) -> None:
    """Raise :class:`ForecastInputError` unless ``path`` is a file that can be opened."""
    if not path.is_file():
        raise ForecastInputError(f"input file not found: {path}")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ForecastInputError(f"cannot read {path} as CSV: {exc}") from None


def check(args: argparse.Namespace) -> None:
    """What the command line and the input's header show wrong, in :func:`run`'s order (the level, the input
    file and its columns, the horizon's syntax, the output path), before the engine is imported; raises
    :class:`ForecastInputError`. Whether a duration is a whole number of the series' steps, and not longer than
    it, needs the data: :func:`run` checks that."""
    _level(args.level)
    path = Path(args.input)
    _check_input(path)
    header = read_header(path, DELIMITERS)
    if header is not None and find_layout(header, layouts(args), fold=True) is None:
        raise ForecastInputError(_missing(path, header, layouts(args)))
    split_horizon(args.horizon)
    try:
        check_output(Path(args.output), path, create_parents=True)
    except FileCheckError as exc:
        raise ForecastInputError(str(exc)) from None


def _missing(path: Path, columns: list[str], pairs: list[tuple[str, str]]) -> str:
    hint = "; --time-col and --target-col name others" if len(pairs) > 1 else ""
    return missing_columns(path, columns, pairs, fold=True, hint=hint)


def _read(path: Path, pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """The series as two columns named after the first of ``pairs`` the file holds (``DS`` read as ``ds``)."""
    import numpy as np
    import pandas as pd

    from analytics.forecast.ensemble import MIN_LENGTH
    from analytics.timestamps import parse_timestamps

    _check_input(path)
    try:
        text, delimiter = _csv_text(path)
        df = pd.read_csv(io.StringIO(text), sep=delimiter)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError) as exc:
        raise ForecastInputError(f"cannot read {path} as CSV: {exc}") from None
    # a semicolon CSV (decimal commas) was "missing column(s) ds, y; found ds;y", a header "DS,Y" missing too
    columns = [str(c) for c in df.columns]
    for time_col, target_col in pairs:
        found = find_layout(columns, [(time_col, target_col)], fold=True)
        if found is not None:
            break
    else:
        raise ForecastInputError(_missing(path, columns, pairs))
    df = df[list(found)].set_axis([time_col, target_col], axis=1)
    values = _numbers(df[target_col], decimal_comma=delimiter != ",")
    bad = values.isna() & df[target_col].notna()
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise ForecastInputError(
            f"column {target_col} must be numeric: row {row + 1} holds {df[target_col].iloc[row]!r}"
        )
    try:
        stamps = parse_timestamps(df[time_col])
    except (ValueError, TypeError) as exc:
        raise ForecastInputError(f"column {time_col} must hold timestamps: {exc}") from None
    if stamps.isna().any():
        raise ForecastInputError(f"column {time_col} has empty timestamps")
    empty, infinite = int(values.isna().sum()), int(np.isinf(values).sum())
    if empty or infinite:  # an infinite value cannot be forecast from: like an empty one, it is left out
        parts = [f"{n} {what} value(s)" for n, what in ((empty, "empty"), (infinite, "infinite")) if n]
        _progress(f"{' and '.join(parts)} in {target_col} left out (their steps are interpolated)")
    values = values.where(np.isfinite(values))
    out = pd.DataFrame({time_col: stamps, target_col: values}).dropna(subset=[target_col])
    out.attrs["slash_dates"] = bool(df[time_col].astype(str).str.contains("/", regex=False).any())
    if len(out) < MIN_LENGTH:
        raise ForecastInputError(
            f"series too short: {len(out)} observations, at least {MIN_LENGTH} are needed"
        )
    return out


def run(args: argparse.Namespace) -> None:
    """Execute a parsed command line; raises :class:`ForecastInputError` on bad input."""
    import numpy as np

    from analytics.forecast.ensemble import EnsembleForecaster
    from analytics.forecast.frequency import infer_frequency, parse_horizon, regularize

    started = time.perf_counter()
    level = _level(args.level)
    df = _read(Path(args.input), layouts(args))
    time_col, target_col = map(str, df.columns)
    try:
        freq = infer_frequency(df[time_col])
    except ForecastInputError as exc:
        if df.attrs.get("slash_dates"):
            raise ForecastInputError(f"{exc} (day-first dates such as 13/01/2024 read month-first where they can: "
                                     "write ISO-8601 dates, 2024-01-13)") from None  # fmt: skip
        raise
    regular, report = regularize(df, freq, time_col=time_col, target_col=target_col)
    _progress(f"read {len(df)} rows from {args.input} (columns {time_col},{target_col}); frequency {freq.alias}; "
              f"{report.describe()}")
    h = parse_horizon(args.horizon, freq)
    if h > len(regular):
        raise ForecastInputError(
            f"horizon of {h} steps is longer than the history ({len(regular)} steps); shorten it"
        )
    _progress(f"forecasting {h} steps at level {level:g}%")
    forecaster = EnsembleForecaster(freq=freq.alias, level=level)
    # values near the float range (1e308) overflow in errors and scales: the forecast still comes out
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = forecaster.forecast(regular, h=h, time_col=time_col, target_col=target_col)
    result = next(iter(forecaster.results_.values()))
    if result.failures:
        failed = "; ".join(f"{k} ({v})" for k, v in result.failures.items())
        _progress(f"models that failed and were left out: {failed}")
    _progress(f"model {result.label}")
    if not np.isfinite(out[["yhat_lower", "yhat_upper"]].to_numpy(dtype=float)).all():
        _progress("warning: some intervals could not be computed (their errors overflow: values near the float "
                  "range); those yhat_lower/yhat_upper cells are empty")  # fmt: skip
    columns = [time_col, "yhat", "yhat_lower", "yhat_upper", "model"]
    try:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)  # as hub detect does
        out[columns].to_csv(args.output, index=False)
    except OSError as exc:
        raise ForecastInputError(f"cannot write {args.output}: {exc}") from None
    _progress(f"wrote {len(out)} rows to {args.output} in {time.perf_counter() - started:.1f} s")


def main(argv: list[str] | None = None) -> int:
    """Run ``hub forecast``; returns 0 on success, 2 on bad input (message on stderr)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage and the error
        return int(exc.code) if isinstance(exc.code, int) else 2
    try:
        check(args)  # a typo is reported at once, not after importing the engine
        run(args)
    except ForecastInputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
