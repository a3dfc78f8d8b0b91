"""``hub detect``: score a ``timestamp,value`` (NAB layout) or ``ds,y`` CSV and write it back with anomaly columns.

Usage::

    hub detect --input series.csv --output scored.csv
    hub detect --input latency.csv --output scored.csv --related tokens,error_rate   # scored jointly
    hub detect --input big.csv --output scored.csv --detectors robust,seasonal        # faster, no learned models
    hub detect --input series.csv --output scored.csv --all-columns                   # + expected range, explanation

The input's columns are ``timestamp,value``, or ``ds,y`` (the layout ``hub forecast`` reads; ``timestamp,value``
first when a file has both). Rows are scored in timestamp order and written back in the input's order, with
the input's column names. Output: the input rows
plus ``anomaly_score`` (> 1 anomalous), ``is_anomaly`` (the alerts: the first alert-worthy point of
each anomalous event, and any point where it escalates to 3x its last alert; see ``AnomalyDetector``),
``severity`` and ``detected_by`` (detector names joined by ``|``). Timestamps: ISO-8601 text or epoch
numbers (``analytics.timestamps``). ``--related`` names numeric columns of the same file that the
Isolation Forest scores jointly with the value column (a broken relationship between them is an anomaly of
the value; with related columns it may alert alone). ``--detectors`` chooses the ensemble's detectors
by name (default: ``robust,seasonal,iforest,autoencoder``; ``lstm`` and ``zscore`` exist too; one
whose dependency is missing is skipped with a warning). ``--all-columns`` adds ``confidence``,
``yhat``, ``yhat_lower``, ``yhat_upper`` and ``explanation``. Bad input exits with status 2 and a
one-line message on stderr. Unless ``--quiet``, stderr says what was read (rows, columns) and what was
written (rows, anomalies flagged, the output path), as ``hub forecast`` does.

The arguments, the input file's presence and columns (its header line: the time and value columns and the
``--related`` ones) and the output path are checked before pandas and the detectors (scikit-learn, torch:
a second or more) are imported, so ``--help``, a typo and a file of the wrong layout are answered at once;
the data itself (numbers, timestamps) is read before the detectors are imported.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from analytics.cli_files import FileCheckError, check_output, find_layout, missing_columns, read_header

from .names import DEFAULT_DETECTORS, DETECTOR_NAMES

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .ensemble import AnomalyDetector

EXIT_USAGE = 2
#: The layouts read, in order of preference: (time column, value column).
LAYOUTS: tuple[tuple[str, str], ...] = (("timestamp", "value"), ("ds", "y"))
#: Written after the four required columns with ``--all-columns``.
EXTRA_COLUMNS = ("confidence", "yhat", "yhat_lower", "yhat_upper", "explanation")


class InputError(ValueError):
    """The input file cannot be scored; the message says why (exit status 2)."""


def check_input(path: Path) -> None:
    """Raise :class:`InputError` unless ``path`` is a file that can be opened (before anything heavy)."""
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    if not path.is_file():
        raise InputError(f"input is not a file: {path}")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot read input file {path}: {exc.strerror or exc}") from None


def layout(columns: list[str], path: Path) -> tuple[str, str]:
    """The file's ``(time, value)`` columns (the first of :data:`LAYOUTS` it holds); raise :class:`InputError`."""
    found = find_layout(columns, LAYOUTS, fold=False)
    if found is None:
        raise InputError(missing_columns(path, columns, LAYOUTS, fold=False))
    return found


def check_related(spec: str, columns: list[str], pair: tuple[str, str], path: Path) -> list[str]:
    """The ``--related`` names; raise :class:`InputError` naming one that is not a column of the file other than
    the time and value columns ``pair`` (the header is enough: whether it holds numbers needs the data)."""
    names = [c.strip() for c in spec.split(",") if c.strip()]
    for name in names:
        if name in (*pair, "_ts") or name not in columns:
            known = ", ".join(c for c in columns if c not in (*pair, "_ts")) or "none"
            raise InputError(f"--related column {name!r} is not a related column of {path}; found: {known}")
    return names


def read_series(path: Path) -> pd.DataFrame:
    """Read and validate a ``timestamp,value`` (or ``ds,y``) CSV; raise :class:`InputError` with a clear message.

    The frame keeps the file's columns, its value column as floats, plus ``_ts`` (the parsed timestamps);
    ``attrs["layout"]`` holds the ``(time, value)`` column names."""
    import numpy as np
    import pandas as pd

    from analytics.timestamps import parse_timestamps

    check_input(path)
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise InputError(f"input file is empty: {path}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"input file is not a readable CSV: {path}: {exc}") from None
    time_col, value_col = layout([str(c) for c in df.columns], path)
    if df.empty:
        raise InputError(f"input file has a header but no rows: {path}")
    values = pd.to_numeric(df[value_col], errors="coerce")
    bad = df.index[values.isna() & df[value_col].notna()]
    if len(bad):
        row = int(bad[0])
        raise InputError(f"non-numeric {value_col} {df[value_col].iat[row]!r} at data row {row + 1} of {path}")
    try:
        ts = parse_timestamps(df[time_col])
    except (ValueError, TypeError) as exc:
        raise InputError(f"unparseable timestamp in {path}: {exc}") from None
    if ts.isna().any():
        row = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise InputError(f"missing timestamp at data row {row + 1} of {path}")
    if not np.isfinite(values.to_numpy(dtype=float)).any():
        raise InputError(f"no numeric values in {path}")
    out = df.copy()
    out[value_col] = values.astype(float)
    out["_ts"] = ts
    out.attrs["layout"] = (time_col, value_col)
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hub detect", description="Score a timestamp,value (or ds,y) CSV for anomalies.")
    p.add_argument("--input", required=True, type=Path, help="CSV with timestamp,value (or ds,y) columns")
    p.add_argument("--output", required=True, type=Path, help="where to write the scored CSV")
    p.add_argument(
        "--related",
        default="",
        metavar="COL[,COL...]",
        help="numeric columns of the same file scored jointly with the value (multivariate Isolation Forest)",
    )
    p.add_argument(
        "--detectors",
        default="",
        metavar="NAME[,NAME...]",
        help=f"the ensemble's detectors (default: {','.join(DEFAULT_DETECTORS)}; known: {', '.join(DETECTOR_NAMES)})",
    )
    p.add_argument(
        "--all-columns",
        action="store_true",
        help="also write confidence, yhat, yhat_lower, yhat_upper and explanation",
    )
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    return p


def detector_names(spec: str) -> list[str]:
    """The names ``--detectors`` gives (empty: the defaults); raise :class:`InputError` on a name given
    twice or unknown. Needs no detector to be imported."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise InputError(f"--detectors names a detector twice: {spec}")
    for name in names:  # as make_detectors says it
        if name not in DETECTOR_NAMES:
            raise InputError(f"--detectors: unknown detector {name!r}; choose from {', '.join(DETECTOR_NAMES)}")
    return names


def build(spec: str) -> AnomalyDetector:
    """The ensemble for ``--detectors`` (empty: the defaults); raise :class:`InputError` on a bad name."""
    names = detector_names(spec)
    from .ensemble import AnomalyDetector
    from .registry import make_detectors

    if not names:
        return AnomalyDetector()
    try:
        return AnomalyDetector(make_detectors(names))
    except ValueError as exc:
        raise InputError(f"--detectors: {exc}") from None


def related_columns(df: pd.DataFrame, spec: str, path: Path) -> dict[str, np.ndarray]:
    """The ``--related`` columns as floats; raise :class:`InputError` naming a missing or non-numeric one."""
    import pandas as pd

    out: dict[str, np.ndarray] = {}
    pair = df.attrs.get("layout", LAYOUTS[0])
    for name in check_related(spec, [str(c) for c in df.columns], pair, path):
        values = pd.to_numeric(df[name], errors="coerce")
        bad = df.index[values.isna() & df[name].notna()]
        if len(bad):
            row = int(bad[0])
            raise InputError(f"non-numeric {name} {df[name].iat[row]!r} at data row {row + 1} of {path}")
        out[f"related:{name}"] = values.to_numpy(dtype=float)
    return out


def check_files(args: argparse.Namespace) -> None:
    """What the input's header and the output path show wrong (the layout, the ``--related`` names, an output
    that cannot be written), before pandas and the detectors are imported; raise :class:`InputError`."""
    header = read_header(args.input)
    if header is not None:
        check_related(args.related, header, layout(header, args.input), args.input)
    try:
        check_output(args.output, args.input, create_parents=True)
    except FileCheckError as exc:
        raise InputError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``hub detect``; returns the exit status (0 ok, 2 bad input or usage)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed the message
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    started = time.monotonic()
    try:  # what the command line and the file's header show wrong, before pandas and the detectors (seconds)
        detector_names(args.detectors)
        check_input(args.input)
        check_files(args)
    except InputError as exc:
        print(f"hub detect: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    import numpy as np
    import pandas as pd

    try:  # the data before the detectors: a bad number or timestamp is reported without importing them
        df = read_series(args.input)
        related = related_columns(df, args.related, args.input)
        detector = build(args.detectors)
    except InputError as exc:
        print(f"hub detect: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if detector.skipped:
        print(
            f"hub detect: warning: skipped (dependency not installed): {', '.join(detector.skipped)}", file=sys.stderr
        )
    if not detector.detectors:
        print("hub detect: error: none of the chosen detectors can run here", file=sys.stderr)
        return EXIT_USAGE
    time_col, value_col = df.attrs["layout"]
    if not args.quiet:
        extra = f"; related {', '.join(n.split(':', 1)[1] for n in related)}" if related else ""
        print(f"hub detect: read {len(df)} rows from {args.input} (columns {time_col},{value_col}{extra}); scoring "
              f"with {', '.join(d.name for d in detector.detectors)}", file=sys.stderr)  # fmt: skip
    duplicates = int(df["_ts"].duplicated().sum())
    if duplicates and not args.quiet:  # each row is still scored (in time order, equal stamps in file order)
        print(f"hub detect: warning: {duplicates} duplicate timestamp(s) (merged files?); each row is scored, rows "
              "with the same timestamp in file order", file=sys.stderr)  # fmt: skip
    scoring = time.monotonic()
    # Detectors need time order; rows are written back in the input's order.
    order = np.argsort(df["_ts"].to_numpy(), kind="stable")
    series = pd.DataFrame({"timestamp": df["_ts"].to_numpy()[order], "value": df[value_col].to_numpy()[order]})
    for name, column in related.items():
        series[name] = column[order]
    scored = detector.score(series)
    took = time.monotonic() - scoring
    back = np.empty_like(order)
    back[order] = np.arange(order.size)
    out = df.drop(columns="_ts")
    out["anomaly_score"] = scored["anomaly_score"].round(6).to_numpy()[back]
    out["is_anomaly"] = scored["is_anomaly"].to_numpy()[back]
    out["severity"] = scored["severity"].to_numpy()[back]
    out["detected_by"] = ["|".join(scored["detected_by"].iat[i]) for i in back]
    if args.all_columns:
        for col in EXTRA_COLUMNS:
            column = scored[col].to_numpy()[back]
            out[col] = column.round(6) if col != "explanation" else column
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        out.to_csv(args.output, index=False)
    except OSError as exc:
        print(f"hub detect: error: cannot write {args.output}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.quiet:
        print(
            f"hub detect: wrote {len(out)} rows to {args.output}: {int(out['is_anomaly'].sum())} anomalies flagged "
            f"(is_anomaly); scored in {took:.1f} s ({len(out) / max(took, 1e-9):.0f} points/s), "
            f"{time.monotonic() - started:.1f} s in all",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
