"""The options of ``hub simulate`` and their checks, answered before anything heavy is imported.

:func:`build_parser` is the argparse parser (each value's type checks it: a positive rate, an ISO-8601
start time with a zone, a span such as ``2d``); :func:`_validate` checks the options together and raises
``_UsageError`` (exit code 2 in :func:`hub.simulate.cli.main`). It imports only the scenarios and
:mod:`hubcore.durations`, so that ``hub simulate --help`` stays fast:

    >>> args = build_parser().parse_args(["--dry-run", "--output", "e.jsonl", "--count", "10", "--backfill", "2d"])
    >>> _validate(args)
    >>> args.backfill, args.batch, args.otlp_sample
    (172800.0, 500, 'auto')
    >>> _validate(build_parser().parse_args(["--rate", "5"]))
    Traceback (most recent call last):
    ...
    hub.simulate.arguments._UsageError: give --duration S or --count N (or --backfill SPAN)
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from hub.simulate.scenarios import SCENARIOS
from hubcore import durations

MAX_BATCH = 1000
#: the hub's default processors.native_events.max_age (hubcore.config): the oldest event it accepts
DEFAULT_MAX_AGE_S = 7 * 86_400.0
OTLP_AUTO_REQUESTS_PER_S = 2000


_N = TypeVar("_N", int, float)


class _UsageError(Exception):
    pass


def _number(text: str, cast: Callable[[str], _N], what: str) -> _N:
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def _positive_float(text: str) -> float:
    v = _number(text, float, "a number")
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return v


def _positive_int(text: str) -> int:
    v = _number(text, int, "an integer")
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return v


def _fraction(text: str) -> float:
    v = _number(text, float, "a number")
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return v


def _start_time(text: str) -> float:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 time (e.g. 2026-01-01T00:00:00Z)") from None
    if dt.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a time zone (e.g. a trailing Z)")
    return dt.timestamp()


def _span(text: str) -> float:
    """``2d``, ``12h``, ``90m``, ``3600s`` or plain seconds → seconds (positive;
    :func:`hubcore.durations.parse_duration`)."""
    try:
        return durations.parse_duration(text)
    except durations.DurationError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration (e.g. 2d, 12h, 90m): {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hub simulate",
        description="Send realistic native events (and optionally OTLP) from the six LLM platform modules.",
        epilog="Scenarios: " + "; ".join(f"{k}: {v.description}" for k, v in sorted(SCENARIOS.items())),
    )
    dest = p.add_argument_group("destination")
    dest.add_argument("--api", metavar="URL", help="hub API base URL (events go to POST {api}/api/v1/events)")
    dest.add_argument("--grpc", metavar="HOST:PORT",
                      help="send native events to the hub's gRPC receiver instead of --api")  # fmt: skip
    dest.add_argument("--otlp", metavar="URL", help="OTLP/HTTP base URL, e.g. http://127.0.0.1:4318 (optional)")
    dest.add_argument("--tenant", metavar="T", help="tenant id: X-Scope-OrgID header (and tags.tenant_id)")
    dest.add_argument("--token", metavar="TOKEN", default=os.environ.get("HUB_API_TOKEN"),
                      help="bearer token for the API (default $HUB_API_TOKEN)")  # fmt: skip
    dest.add_argument("--dry-run", action="store_true", help="write events to --output instead of sending")
    dest.add_argument("--output", metavar="FILE.jsonl", help="JSON Lines file for --dry-run")
    load = p.add_argument_group("load")
    load.add_argument("--rate", type=_positive_float, default=100.0, metavar="N",
                      help="native events per second overall (default 100)")  # fmt: skip
    load.add_argument("--duration", type=_positive_float, metavar="S", help="seconds to run")
    load.add_argument("--count", type=_positive_int, metavar="N", help="send exactly N events")
    load.add_argument("--batch", type=_positive_int, default=500, metavar="N",
                      help=f"events per request, at most {MAX_BATCH} (default 500)")  # fmt: skip
    load.add_argument("--unpaced", action="store_true",
                      help="send as fast as possible (benchmarks); timestamps are the wall clock")  # fmt: skip
    load.add_argument("--backfill", type=_span, metavar="SPAN",
                      help="send SPAN of history that ends now (e.g. 2d) as fast as the hub takes it, timestamps "
                           "spread over it at --rate events per simulated second, then exit; the hub rejects "
                           "events older than its max_age (7 days by default: --max-age)")  # fmt: skip
    load.add_argument("--max-age", type=_span, default=DEFAULT_MAX_AGE_S, metavar="SPAN",
                      help="the oldest event the hub accepts (its processors.native_events.max_age; default 7d): "
                           "a longer --backfill is refused before anything is sent")  # fmt: skip
    load.add_argument("--concurrency", type=_positive_int, default=1, metavar="N",
                      help="batches in flight at once (default 1; 2-4 for benchmarks)")  # fmt: skip
    load.add_argument("--flush-interval", type=_positive_float, default=0.5, metavar="S",
                      help="send a partial batch after this long (default 0.5)")  # fmt: skip
    load.add_argument("--max-retries", type=int, default=5, metavar="N",
                      help="retries of a batch on connection errors / 5xx (default 5)")  # fmt: skip
    real = p.add_argument_group("realism")
    real.add_argument("--seed", type=int, help="random seed (same seed → same events)")
    real.add_argument("--scenario", default="none", metavar="NAME[:k=v,...]",
                      help=f"incident to inject: {', '.join(sorted(SCENARIOS))} (default none)")  # fmt: skip
    real.add_argument("--truth", metavar="FILE.json", help="write the scenario's ground truth here")
    real.add_argument("--traces-dir", metavar="DIR",
                      help="LLM traces (default $HUB_TRACES_DIR or <repo>/../shared/data/llm_traces)")  # fmt: skip
    real.add_argument("--start-time", type=_start_time, metavar="ISO",
                      help="timestamp of the first event (default now)")  # fmt: skip
    otlp = p.add_argument_group("OTLP")
    otlp.add_argument("--span-sample", type=_fraction, default=0.01, metavar="F",
                      help="fraction of requests also sent as spans (default 0.01)")  # fmt: skip
    otlp.add_argument("--otlp-sample", default="auto", metavar="F|auto",
                      help="fraction of requests recorded as OTLP metrics (default auto: all up to "
                           f"{OTLP_AUTO_REQUESTS_PER_S:,} requests/s, then a sample)")  # fmt: skip
    otlp.add_argument("--otlp-interval", type=_positive_float, default=5.0, metavar="S",
                      help="metric export interval (default 5)")  # fmt: skip
    out = p.add_argument_group("output")
    out.add_argument("--progress-interval", type=_positive_float, default=5.0, metavar="S",
                     help="seconds between progress lines when stderr is not a terminal (default 5)")  # fmt: skip
    out.add_argument("--quiet", action="store_true", help="no progress display")
    out.add_argument("--list-scenarios", action="store_true", help="list the scenarios and exit")
    return p


def _validate(args: argparse.Namespace) -> None:
    if args.list_scenarios:
        return
    if args.backfill is not None:
        for flag, value in (("--duration", args.duration), ("--start-time", args.start_time)):
            if value is not None:
                raise _UsageError(f"--backfill sets the time span itself: leave out {flag}")
        if args.unpaced:
            raise _UsageError("--backfill is already unpaced (its timestamps are simulated): leave out --unpaced")
        if args.backfill > args.max_age:  # the hub would dead-letter the older part (a 10d backfill: 1.3 M events)
            raise _UsageError(
                f"--backfill {args.backfill / 86_400:g}d reaches further back than the hub accepts (--max-age "
                f"{args.max_age / 86_400:g}d, the hub's processors.native_events.max_age): the older events would be "
                "rejected into its dead-letter queue; shorten --backfill, or raise --max-age to match a hub "
                "configured to keep older events"
            )
    elif args.duration is None and args.count is None:
        raise _UsageError("give --duration S or --count N (or --backfill SPAN)")
    if args.batch > MAX_BATCH:
        raise _UsageError(f"--batch must be at most {MAX_BATCH}")
    if args.max_retries < 0:
        raise _UsageError("--max-retries must be >= 0")
    if args.dry_run:
        if not args.output:
            raise _UsageError("--dry-run needs --output FILE.jsonl")
    elif not args.api and not args.grpc:
        raise _UsageError("give --api URL (or --grpc HOST:PORT, or --dry-run --output FILE.jsonl)")
    if args.api and args.grpc:
        raise _UsageError("give --api or --grpc, not both")
    if args.otlp_sample != "auto":
        try:
            args.otlp_sample = _fraction(args.otlp_sample)
        except argparse.ArgumentTypeError as exc:
            raise _UsageError(f"--otlp-sample: {exc}") from None
    for name in ("api", "otlp"):
        url = getattr(args, name)
        if url and not url.startswith(("http://", "https://")):
            raise _UsageError(f"--{name} must be an http:// or https:// URL, got {url!r}")
