"""Evaluate the anomaly ensemble on NAB (realKnownCause, artificialWithAnomaly, artificialNoAnomaly).

Scoring: a labelled window counts as found when at least one flagged point (``is_anomaly``) falls
inside it (counted once); flagged points outside every window are grouped into runs of consecutive
flags, each run one false positive; flags in the first 15 % of each file (NAB's probationary period)
are ignored; counts are summed over files. The baseline (rolling z-score, k=6, every point above the
threshold flagged) is measured in the same run. The last line printed is one JSON object.

Usage::

    .venv/bin/python benchmarks/anomaly_eval.py            # all files
    .venv/bin/python benchmarks/anomaly_eval.py --quick    # a subset for CI (< 60 s)
    .venv/bin/python benchmarks/anomaly_eval.py --per-file # + one line per file (tp, fp, fn)
    .venv/bin/python benchmarks/anomaly_eval.py --root ~/NAB --categories all  # every folder of a full
                                                                 #   NAB checkout (realAWSCloudwatch, realTraffic...)
    .venv/bin/python benchmarks/anomaly_eval.py --synthetic 70   # + 70 generated series (generalisation)
    .venv/bin/python benchmarks/anomaly_eval.py --ops 40         # + 40 operational-metric series with
                                                                 #   routine bursts (see anomaly_series.py)
    .venv/bin/python benchmarks/anomaly_eval.py --traces 55      # + 55 series of real LLM traffic (Azure,
                                                                 #   Mooncake traces), 11 as recorded, 44 with
                                                                 #   one injected anomaly
    .venv/bin/python benchmarks/anomaly_eval.py --m4 240         # + 240 real hourly M4 series, a sixth as
                                                                 #   recorded, the rest with one injected anomaly
    .venv/bin/python benchmarks/anomaly_eval.py --noise 30       # + 30 series of pure noise (every alert false)
    .venv/bin/python benchmarks/anomaly_eval.py --ops 40 --first-seed 40  # other seeds: a held-out estimate
    .venv/bin/python benchmarks/anomaly_eval.py --feedback 1 --ops 40  # + what marking the first false
                                                                 #   positive of each series does afterwards

``--feedback K``: in every series (NAB, and the operational set when asked) with a false-positive alert
after the probation, the first K are marked (``mark_false_positive``, as the feedback endpoint does),
the series is scored again with what that taught, and the alerts *after* the last marked one are
counted against the windows that start after it, with and without the feedback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from anomaly_series import M4_ROOT, TRACES_ROOT, m4_series, noise_series, ops_series, synthetic_series, trace_series

from analytics.anomaly import AnomalyDetector, RollingZScoreDetector

DEFAULT_ROOT = Path("/work/shared/data/nab")
CATEGORIES = ("realKnownCause", "artificialWithAnomaly", "artificialNoAnomaly")
QUICK = (
    "realKnownCause/ec2_request_latency_system_failure.csv",
    "realKnownCause/rogue_agent_key_hold.csv",
    "realKnownCause/ambient_temperature_system_failure.csv",
    "artificialWithAnomaly/art_daily_jumpsup.csv",
    "artificialWithAnomaly/art_daily_flatmiddle.csv",
    "artificialNoAnomaly/art_noisy.csv",
)
PROBATION = 0.15


def count(ts: np.ndarray, flags: np.ndarray, windows: Iterable[tuple[str, str]]) -> tuple[int, int, int]:
    """(found windows, false-positive runs, missed windows) for one file."""
    flags = np.asarray(flags, dtype=bool).copy()
    flags[: int(PROBATION * flags.size)] = False
    inside = np.zeros(flags.size, dtype=bool)
    tp = fn = 0
    for start, end in windows:
        mask = (ts >= np.datetime64(pd.Timestamp(start))) & (ts <= np.datetime64(pd.Timestamp(end)))
        inside |= mask
        if (flags & mask).any():
            tp += 1
        else:
            fn += 1
    outside = flags & ~inside
    fp = int(outside[0]) + int(np.sum(outside[1:] & ~outside[:-1])) if outside.size else 0
    return tp, fp, fn


def alerts_by_severity(
    ts: np.ndarray, scored: pd.DataFrame, windows: Iterable[tuple[str, str]], into: dict[str, list[int]]
) -> None:
    """Add each alert (``is_anomaly``, after the probation) to ``into[severity]`` as [inside a window,
    outside]: how far a user can trust an alert of each severity."""
    flags = scored["is_anomaly"].to_numpy(dtype=bool).copy()
    flags[: int(PROBATION * flags.size)] = False
    inside = np.zeros(flags.size, dtype=bool)
    for start, end in windows:
        inside |= (ts >= np.datetime64(pd.Timestamp(start))) & (ts <= np.datetime64(pd.Timestamp(end)))
    severity = scored["severity"].astype(str).to_numpy()
    for i in np.flatnonzero(flags):
        into.setdefault(severity[i], [0, 0])[0 if inside[i] else 1] += 1


def severity_report(into: dict[str, list[int]]) -> dict[str, dict[str, float | int]]:
    """``{severity: {alerts, in_window, precision}}`` in severity order."""
    order = ["low", "medium", "high", "critical"]
    return {
        sev: {"alerts": a + b, "in_window": a, "precision": round(a / (a + b), 3) if a + b else 0.0}
        for sev, (a, b) in sorted(into.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 9)
    }


def feedback_effect(frame: pd.DataFrame, windows: list[tuple[str, str]], k: int) -> tuple[list[int], list[int]] | None:
    """(tp, fp, fn) after the last of the first ``k`` marked false positives, without and with the
    feedback; None when the series has no false positive to mark."""
    detector = AnomalyDetector()
    scored = detector.score(frame)
    ts = frame["timestamp"].to_numpy()
    inside = np.zeros(ts.size, dtype=bool)
    for start, end in windows:
        inside |= (ts >= np.datetime64(pd.Timestamp(start))) & (ts <= np.datetime64(pd.Timestamp(end)))
    flags = scored["is_anomaly"].to_numpy(dtype=bool).copy()
    flags[: int(PROBATION * ts.size)] = False
    marked = np.flatnonzero(flags & ~inside)[:k]
    if not marked.size:
        return None
    for i in marked:
        detector.mark_false_positive(scored["timestamp"].iloc[int(i)])
    after = int(marked[-1]) + 1
    future = [(a, b) for a, b in windows if np.datetime64(pd.Timestamp(a)) > ts[after - 1]]
    before = scored["is_anomaly"].to_numpy(dtype=bool).copy()
    taught = detector.score(frame)["is_anomaly"].to_numpy(dtype=bool).copy()
    before[:after] = False
    taught[:after] = False
    return list(count(ts, before, future)), list(count(ts, taught, future))


def prf(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(f, 3), "tp": tp, "fp": fp, "fn": fn}


def generated(
    make: Callable[[int], tuple[pd.DataFrame, list[tuple[str, str]], str]], n: int, sep: str, first: int = 0
) -> dict[str, object]:
    """Score ``n`` generated series (seeds ``first`` on); totals, and tp/fp/fn by each ``sep``-separated
    part of the kind."""
    total = [0, 0, 0]
    by_kind: dict[str, list[int]] = {}
    baseline = [0, 0, 0]
    severities: dict[str, list[int]] = {}
    points = 0
    for seed in range(first, first + n):
        frame, wins, kind = make(seed)
        points += len(frame)
        scored = AnomalyDetector().score(frame)
        ts = frame["timestamp"].to_numpy()
        c = count(ts, scored["is_anomaly"].to_numpy(), wins)
        alerts_by_severity(ts, scored, wins, severities)
        z = RollingZScoreDetector(k=6.0).score(frame["value"].to_numpy(float)).anomaly_score > 1.0
        baseline = [a + b for a, b in zip(baseline, count(ts, z, wins), strict=True)]
        total = [a + b for a, b in zip(total, c, strict=True)]
        for part in kind.split(sep):
            by_kind[part] = [a + b for a, b in zip(by_kind.get(part, [0, 0, 0]), c, strict=True)]
    return {**prf(*total), "seeds": [first, first + n - 1], "points": points,
            "false_positives_per_10k_points": round(1e4 * total[1] / max(points, 1), 2),
            "baseline_zscore_k6": prf(*baseline), "by_kind_tp_fp_fn": by_kind,
            "alert_precision_by_severity": severity_report(severities)}  # fmt: skip


def feedback_report(args: argparse.Namespace, keys: list[str], windows: dict[str, Any]) -> dict[str, object]:
    """``--feedback K`` over NAB (and the operational set with ``--ops``): totals without/with feedback."""
    frames: list[tuple[str, pd.DataFrame, list[tuple[str, str]]]] = [
        ("nab", pd.read_csv(args.root / "data" / key, parse_dates=["timestamp"]), windows.get(key, [])) for key in keys
    ]
    frames += [("ops", *ops_series(seed)[:2]) for seed in range(args.ops)]
    out: dict[str, object] = {"marked_per_series": args.feedback}
    for group in ("nab", "ops"):
        series, without, taught = 0, [0, 0, 0], [0, 0, 0]
        for g, frame, wins in frames:
            if g != group:
                continue
            effect = feedback_effect(frame, wins, args.feedback)
            if effect is None:
                continue
            series += 1
            without = [a + b for a, b in zip(without, effect[0], strict=True)]
            taught = [a + b for a, b in zip(taught, effect[1], strict=True)]
        if series:
            out[group] = {"series": series, "without": prf(*without), "with": prf(*taught)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="NAB folder (data/, labels/)")
    ap.add_argument(
        "--categories",
        default=",".join(CATEGORIES),
        metavar="A,B|all",
        help="NAB folders under --root/data to score (default: %(default)s; 'all' for every folder, e.g. of a "
        "full NAB checkout: realAWSCloudwatch, realAdExchange, realTraffic, realTweets...)",
    )
    ap.add_argument("--quick", action="store_true", help="a subset of files (CI)")
    ap.add_argument("--verbose", action="store_true", help="per-file counts on stderr")
    ap.add_argument(
        "--synthetic",
        type=int,
        default=0,
        metavar="N",
        help="also score N generated series (one anomaly each) as a generalisation check",
    )
    ap.add_argument(
        "--ops",
        type=int,
        default=0,
        metavar="N",
        help="also score N operational-metric series with routine, unlabelled bursts (precision check)",
    )
    ap.add_argument(
        "--traces",
        type=int,
        default=0,
        metavar="N",
        help="also score N series of real LLM traffic (anomaly_series.trace_series; 55 covers every base and kind)",
    )
    ap.add_argument(
        "--m4",
        type=int,
        default=0,
        metavar="N",
        help="also score N real hourly series of the M4 set (anomaly_series.m4_series; kind seed %% 6)",
    )
    ap.add_argument(
        "--noise",
        type=int,
        default=0,
        metavar="N",
        help="also score N series of pure noise (anomaly_series.noise_series): every alert is a false positive",
    )
    ap.add_argument(
        "--first-seed",
        type=int,
        default=0,
        metavar="K",
        help="generated sets use seeds K..K+N-1 (default 0; other seeds give a held-out estimate)",
    )
    ap.add_argument(
        "--feedback",
        type=int,
        default=0,
        metavar="K",
        help="also measure what marking the first K false positives of each series does afterwards",
    )
    ap.add_argument(
        "--per-file",
        action="store_true",
        help="print tp/fp/fn per file (ensemble, baseline, each detector) and add them to the JSON",
    )
    args = ap.parse_args(argv)
    needed = [(True, args.root / "labels" / "combined_windows.json", "NAB (--root)"),
              (args.traces > 0, TRACES_ROOT / "AzureLLMInferenceTrace_code.csv", "--traces: the LLM traces (HUB_LLM_TRACES)"),
              (args.m4 > 0, M4_ROOT / "Hourly-train.csv", "--m4: the M4 hourly set (HUB_M4_HOURLY)")]  # fmt: skip
    for wanted, path, what in needed:
        if wanted and not path.is_file():
            ap.error(f"{what} not found: {path} is missing")
    windows = json.loads((args.root / "labels" / "combined_windows.json").read_text())
    if args.categories == "all":
        categories = sorted(p.name for p in (args.root / "data").iterdir() if p.is_dir())
    else:
        categories = [c.strip() for c in args.categories.split(",") if c.strip()]
    missing = [c for c in categories if not (args.root / "data" / c).is_dir()]
    if missing or not categories:
        ap.error(f"--categories: no folder {', '.join(missing) or '(none given)'} under {args.root / 'data'}")
    keys = [f"{c}/{p.name}" for c in categories for p in sorted((args.root / "data" / c).glob("*.csv"))]
    if args.quick:
        keys = [k for k in keys if k in QUICK]
    # one group per category with labelled windows, all real ones together when there are several, overall
    real = [c for c in categories if c.startswith("real")]
    groups = (*[c for c in categories if c != "artificialNoAnomaly"], *(["real"] if len(real) > 1 else []), "overall")
    totals = {m: {g: [0, 0, 0] for g in groups} for m in ("ensemble", "baseline")}
    per_detector: dict[str, list[int]] = {}
    per_file: dict[str, dict[str, list[int]]] = {}
    severities: dict[str, list[int]] = {}
    points, seconds = 0, 0.0
    baseline = RollingZScoreDetector(k=6.0)
    for key in keys:
        df = pd.read_csv(args.root / "data" / key, parse_dates=["timestamp"])
        ts = df["timestamp"].to_numpy()
        detector = AnomalyDetector()
        started = time.perf_counter()
        scored = detector.score(df)
        seconds += time.perf_counter() - started
        points += len(df)
        wins = windows.get(key, [])
        alerts_by_severity(ts, scored, wins, severities)
        results = {
            "ensemble": count(ts, scored["is_anomaly"].to_numpy(), wins),
            "baseline": count(ts, baseline.score(df["value"].to_numpy(float)).anomaly_score > 1.0, wins),
        }
        for name, s in detector.last_detector_scores.items():
            c = count(ts, detector.alerts(s > 1.0, s), wins)
            results[name] = c
            per_detector[name] = [a + b for a, b in zip(per_detector.get(name, [0, 0, 0]), c, strict=True)]
        per_file[key] = {m: list(c) for m, c in results.items()}
        for method in ("ensemble", "baseline"):
            c = results[method]
            for g in groups:
                if g == "overall" or key.startswith(g + "/") or (g == "real" and key.startswith("real")):
                    totals[method][g] = [a + b for a, b in zip(totals[method][g], c, strict=True)]
        if args.verbose:
            print(f"{key}: ensemble {results['ensemble']} baseline {results['baseline']}", file=sys.stderr)
        if args.per_file:
            cells = "  ".join(f"{m} {'/'.join(map(str, c))}" for m, c in results.items())
            print(f"{key:60s} (tp/fp/fn)  {cells}")
    report: dict[str, object] = {
        "mode": "quick" if args.quick else "full",
        "files": len(keys),
        "points": points,
        "ensemble": {g: prf(*totals["ensemble"][g]) for g in groups},
        "baseline_zscore_k6": {g: prf(*totals["baseline"][g]) for g in groups},
        "per_detector_overall": {n: prf(*c) for n, c in per_detector.items()},
        "alert_precision_by_severity": severity_report(severities),
        "throughput_points_per_s": round(points / max(seconds, 1e-9), 1),
    }
    if args.synthetic > 0:
        report["synthetic"] = generated(synthetic_series, args.synthetic, "-", args.first_seed)
    if args.ops > 0:
        report["ops"] = generated(ops_series, args.ops, "-", args.first_seed)
    if args.traces > 0:
        report["traces"] = generated(trace_series, args.traces, "-", args.first_seed)
    if args.m4 > 0:
        report["m4"] = generated(m4_series, args.m4, "-", args.first_seed)
    if args.noise > 0:
        report["noise"] = generated(noise_series, args.noise, "-", args.first_seed)
    if args.feedback > 0:
        report["feedback"] = feedback_report(args, keys, windows)
    if args.per_file:
        report["per_file"] = per_file
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
