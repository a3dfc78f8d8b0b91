"""``hub eval``: offline evaluations that run in-process (no server).

    hub eval rca --seeds 4            # inject incidents into simulated traffic; score correlation + RCA

Prints a table (per correlation type: precision = matched / found events, recall = covered / truth events,
explained under it), then ONE JSON line (the last line) with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence

#: Printed under the table: precision and recall count different events, so ``found`` and ``truth`` differ.
TABLE_NOTES = (
    "precision = matched / found: found = events the correlations of this type link; matched = those that belong to",
    "  the injected incident each correlation overlaps most (an incident of any type)",
    "recall = covered / truth: truth = events of the injected incidents of this type; covered = those linked by a",
    "  correlation of this type",
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hub eval", description="Offline evaluations of the hub's analytics.")
    sub = p.add_subparsers(dest="command", required=True)
    rca = sub.add_parser("rca", help="cross-module correlation and root-cause analysis on injected incidents")
    rca.add_argument("--seeds", type=int, default=4, help="number of seeds (4 incidents each; default 4)")
    rca.add_argument("--duration", type=float, default=240.0, help="simulated seconds per seed (default 240)")
    rca.add_argument("--rate", type=float, default=100.0, help="background events per second (default 100)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(argv) if argv is not None else None)
    for bad, message in (
        (args.seeds < 1, f"--seeds must be at least 1, got {args.seeds}"),
        (not (math.isfinite(args.duration) and args.duration >= 120), f"--duration must be at least 120 s, got {args.duration}"),
        (not (math.isfinite(args.rate) and args.rate > 0), f"--rate must be a positive number, got {args.rate}"),
    ):  # fmt: skip
        if bad:
            print(f"hub eval rca: {message}", file=sys.stderr)
            return 2
    from analytics.correlation.evaluate import run_eval

    started = time.perf_counter()
    out = run_eval(seeds=args.seeds, duration_s=args.duration, rate=args.rate)
    out["seconds"] = round(time.perf_counter() - started, 2)
    print(f"{'type':<26}{'precision':>10}{'matched':>9}{'found':>7}{'recall':>9}{'covered':>9}{'truth':>7}")
    for ctype, row in out["per_type"].items():
        prec = "-" if row["precision"] is None else f"{row['precision']:.3f}"
        rec = "-" if row["recall"] is None else f"{row['recall']:.3f}"
        print(f"{ctype:<26}{prec:>10}{row['matched_events']:>9}{row['found_events']:>7}"
              f"{rec:>9}{row['covered_events']:>9}{row['truth_events']:>7}")  # fmt: skip
    for line in TABLE_NOTES:
        print(line)
    print(f"overall: precision {out['precision']:.3f} recall {out['recall']:.3f} accuracy (F1) {out['accuracy']:.3f}")
    print(f"RCA: top-1 {out['rca_top1']:.3f} top-3 {out['rca_top3']:.3f} over {out['incidents']} incidents; "
          f"flush p50 {out['flush_p50_ms']} ms p95 {out['flush_p95_ms']} ms")  # fmt: skip
    print(json.dumps({"eval": "rca", "seeds": args.seeds, **out}, separators=(",", ":")))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
