"""``hub detect``: score a ``timestamp,value`` CSV (NAB layout) and write it back with anomaly columns.

Usage::

    hub detect --input series.csv --output scored.csv
    hub detect --input latency.csv --output scored.csv --related tokens,error_rate   # scored jointly
    hub detect --input big.csv --output scored.csv --detectors robust,seasonal        # faster, no learned models
    hub detect --input series.csv --output scored.csv --all-columns                   # + expected range, explanation

Rows are scored in timestamp order and written back in the input's order. Output: the input rows
plus ``anomaly_score`` (> 1 anomalous), ``is_anomaly`` (the alerts: the first alert-worthy point of
each anomalous event, and any point where it escalates to 3x its last alert; see ``AnomalyDetector``),
``severity`` and ``detected_by`` (detector names joined by ``|``). Timestamps: ISO-8601 text or epoch
numbers (``analytics.timestamps``). ``--related`` names numeric columns of the same file that the
Isolation Forest scores jointly with ``value`` (a broken relationship between them is an anomaly of
``value``; with related columns it may alert alone). ``--detectors`` chooses the ensemble's detectors
by name (default: ``robust,seasonal,iforest,autoencoder``; ``lstm`` and ``zscore`` exist too; one
whose dependency is missing is skipped with a warning). ``--all-columns`` adds ``confidence``,
``yhat``, ``yhat_lower``, ``yhat_upper`` and ``explanation``. Bad input exits with status 2 and a
one-line message on stderr.

The arguments and the input file's presence are checked before the detectors (pandas, scikit-learn,
torch: a second or more) are imported, so ``--help`` and a typo are answered at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .names import DEFAULT_DETECTORS, DETECTOR_NAMES

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .ensemble import AnomalyDetector

EXIT_USAGE = 2
PROGRESS_MIN_ROWS = 20_000
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


def read_series(path: Path) -> pd.DataFrame:
    """Read and validate a ``timestamp,value`` CSV; raise :class:`InputError` with a clear message."""
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
    missing = [c for c in ("timestamp", "value") if c not in df.columns]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)} in {path}; found: {', '.join(map(str, df.columns))}"
        )
    if df.empty:
        raise InputError(f"input file has a header but no rows: {path}")
    values = pd.to_numeric(df["value"], errors="coerce")
    bad = df.index[values.isna() & df["value"].notna()]
    if len(bad):
        row = int(bad[0])
        raise InputError(f"non-numeric value {df['value'].iat[row]!r} at data row {row + 1} of {path}")
    try:
        ts = parse_timestamps(df["timestamp"])
    except (ValueError, TypeError) as exc:
        raise InputError(f"unparseable timestamp in {path}: {exc}") from None
    if ts.isna().any():
        row = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise InputError(f"missing timestamp at data row {row + 1} of {path}")
    if not np.isfinite(values.to_numpy(dtype=float)).any():
        raise InputError(f"no numeric values in {path}")
    out = df.copy()
    out["value"] = values.astype(float)
    out["_ts"] = ts
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hub detect", description="Score a timestamp,value CSV for anomalies.")
    p.add_argument("--input", required=True, type=Path, help="CSV with timestamp,value columns")
    p.add_argument("--output", required=True, type=Path, help="where to write the scored CSV")
    p.add_argument(
        "--related",
        default="",
        metavar="COL[,COL...]",
        help="numeric columns of the same file scored jointly with value (multivariate Isolation Forest)",
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
    for name in [c.strip() for c in spec.split(",") if c.strip()]:
        if name in ("timestamp", "value") or name not in df.columns:
            known = ", ".join(c for c in map(str, df.columns) if c not in ("timestamp", "value", "_ts")) or "none"
            raise InputError(f"--related column {name!r} is not a related column of {path}; found: {known}")
        values = pd.to_numeric(df[name], errors="coerce")
        bad = df.index[values.isna() & df[name].notna()]
        if len(bad):
            row = int(bad[0])
            raise InputError(f"non-numeric {name} {df[name].iat[row]!r} at data row {row + 1} of {path}")
        out[f"related:{name}"] = values.to_numpy(dtype=float)
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``hub detect``; returns the exit status (0 ok, 2 bad input or usage)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed the message
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    try:  # what the command line alone shows wrong, before the detectors are imported (seconds)
        detector_names(args.detectors)
        check_input(args.input)
    except InputError as exc:
        print(f"hub detect: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    import numpy as np
    import pandas as pd

    try:
        detector = build(args.detectors)
        df = read_series(args.input)
        related = related_columns(df, args.related, args.input)
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
    duplicates = int(df["_ts"].duplicated().sum())
    if duplicates and not args.quiet:  # each row is still scored (in time order, equal stamps in file order)
        print(f"hub detect: warning: {duplicates} duplicate timestamp(s) (merged files?); each row is scored, rows "
              "with the same timestamp in file order", file=sys.stderr)  # fmt: skip
    progress = not args.quiet and len(df) >= PROGRESS_MIN_ROWS
    started = time.monotonic()
    if progress:
        print(f"hub detect: scoring {len(df)} points from {args.input} ...", file=sys.stderr)
    # Detectors need time order; rows are written back in the input's order.
    order = np.argsort(df["_ts"].to_numpy(), kind="stable")
    series = pd.DataFrame({"timestamp": df["_ts"].to_numpy()[order], "value": df["value"].to_numpy()[order]})
    for name, column in related.items():
        series[name] = column[order]
    scored = detector.score(series)
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
    if progress:
        took = time.monotonic() - started
        print(
            f"hub detect: {int(out['is_anomaly'].sum())} anomalies in {len(out)} points "
            f"({len(out) / max(took, 1e-9):.0f} points/s) -> {args.output}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
