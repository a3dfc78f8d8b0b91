"""``hub simulate``: drive the hub with realistic traffic from the platform's six modules.

    hub simulate --api http://127.0.0.1:8080 --otlp http://127.0.0.1:4318 --rate 1000 --duration 60
    hub simulate --dry-run --output events.jsonl --count 10000 --seed 1
    hub simulate --api URL --rate 500 --duration 600 --scenario latency_spike:model=gpt-4o --truth t.json

Exit codes: 0 done, 1 the API could not be reached (or refused the credentials), 2 bad arguments,
3 a backfill was delivered but could not be correlated afterwards (do not resend it), 130 interrupted
(Ctrl-C; the summary is still printed). The first Ctrl-C stops generating, lets the batches in flight
finish and sends what was already generated, so ``sent`` counts what the hub accepted; a second Ctrl-C
abandons those too. The summary is one JSON line on stdout; progress goes to stderr.

The arguments are checked before the senders (httpx, gRPC) and the trace loader are imported, so
``--help`` and a typo are answered at once.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar

from hub.simulate.scenarios import SCENARIOS, Scenario, ScenarioError, make_scenario
from hubcore import durations

if TYPE_CHECKING:
    import httpx

    from hub.simulate.generator import Event
    from hub.simulate.senders import ConcurrentSender, FileSink, GrpcSender, OtlpSender, RestSender

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


class Progress:
    """A single updating line on a terminal, periodic lines otherwise."""

    def __init__(self, stream: IO[str], *, quiet: bool, interval: float) -> None:
        self.stream = stream
        self.quiet = quiet
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.interval = 0.25 if self.tty else interval
        self.last = time.monotonic()
        self.wrote_tty = False

    def line(self, s: dict[str, Any]) -> str:
        return (
            f"hub simulate: {s['elapsed_s']:7.1f}s  sent {s['sent']:,}  accepted {s['accepted']:,}  "
            f"rejected {s['rejected']:,}  throttled {s['throttled']:,}  errors {s['errors']:,}  "
            f"rate {s['achieved_rate']:,.0f}/s (target {s['target_rate']:,.0f}/s)"
            + (f"  behind {s['lag_s']:.1f}s" if s.get("lag_s", 0.0) > 1.0 else "")
        )

    def update(self, s: dict[str, Any], *, force: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line(s))
            self.wrote_tty = True
        else:
            self.stream.write(self.line(s) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.wrote_tty:
            self.stream.write("\n")
            self.stream.flush()


def _graceful_interrupt(stop: threading.Event) -> Callable[[], None]:
    """Make the first SIGINT set ``stop`` (and the next raise KeyboardInterrupt); returns the undo.

    Outside the main thread (signals cannot be handled there) it changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        _err("interrupted: finishing the batches in flight (Ctrl-C again to abandon them)")

    signal.signal(signal.SIGINT, on_sigint)

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)

    return restore


def _err(msg: str) -> None:
    sys.stderr.write(f"hub simulate: {msg}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _validate(args)
    except SystemExit as exc:  # argparse: --help (0) or a bad argument (2)
        return exc.code if isinstance(exc.code, int) else 2
    except _UsageError as exc:
        parser.print_usage(sys.stderr)
        _err(f"error: {exc}")
        return 2
    if args.list_scenarios:
        for name, cls in sorted(SCENARIOS.items()):
            params = ", ".join(f"{k}: {v}" for k, v in cls.params_doc.items())
            sys.stdout.write(f"{name}\t{cls.description}" + (f" ({params}; start, length)" if params else "") + "\n")
        return 0
    horizon = args.backfill or args.duration or args.count / args.rate
    try:
        scenario = make_scenario(args.scenario, horizon)
    except ScenarioError as exc:
        parser.print_usage(sys.stderr)
        _err(f"error: --scenario: {exc}")
        return 2
    return _run(args, scenario)


#: Spans sent to the hub's analyze endpoint: six hours, halved (down to ten minutes) while the hub says
#: a call was truncated (it reads at most ``max_events`` events per call).
ANALYZE_CHUNK_S = 6 * 3600.0
ANALYZE_MIN_S = 600.0


def correlate_span(api: str, start_s: float, end_s: float, *, tenant: str | None, token: str | None,
                   transport: httpx.BaseTransport | None = None,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Ask the hub to correlate ``[start_s, end_s)`` (``POST /api/v1/correlations/analyze``, span by span):
    its streaming engine sees only live data, so a backfilled span gets its incidents this way.
    Returns ``{"incidents", "correlations", "events", "calls", "seconds", "truncated"}`` or ``{"error": ...}``.
    ``progress`` gets a line after each span (this takes about as long as sending the backfill did)."""
    import httpx

    headers = {"User-Agent": "hub-simulate/1.0", **({"X-Scope-OrgID": tenant} if tenant else {}),
               **({"Authorization": f"Bearer {token}"} if token else {})}  # fmt: skip
    out: dict[str, Any] = {"incidents": 0, "correlations": 0, "events": 0, "calls": 0, "seconds": 0.0, "truncated": 0}
    spans = []
    lo = start_s
    while lo < end_s:
        hi = min(end_s, lo + ANALYZE_CHUNK_S)
        if end_s - hi < ANALYZE_MIN_S:  # a short rest joins this span (a 1 s one had its own call and line)
            hi = end_s
        spans.append((lo, hi))
        lo = hi
    began, done_s, total_s = time.monotonic(), 0.0, max(end_s - start_s, 0.0)
    if progress is not None:
        progress(f"correlating the backfilled span ({total_s / 3600:.1f} h) with POST /api/v1/correlations/analyze, "
                 f"up to {ANALYZE_CHUNK_S / 3600:.0f} h per call")  # fmt: skip
    try:
        with httpx.Client(headers=headers, timeout=300.0, transport=transport) as client:
            while spans:
                lo, hi = spans.pop(0)
                r = client.post(f"{api.rstrip('/')}/api/v1/correlations/analyze", params={"start": lo, "end": hi})
                out["calls"] += 1
                if r.status_code != 200:
                    return {"error": f"HTTP {r.status_code}: {r.text[:200]}"}
                body = r.json()
                if body.get("truncated") and hi - lo > ANALYZE_MIN_S:  # too busy for one call: halve it
                    mid = (lo + hi) / 2
                    spans[:0] = [(lo, mid), (mid, hi)]
                    continue
                out["truncated"] += bool(body.get("truncated"))
                out["incidents"] += len(body.get("incidents", []))
                out["correlations"] += len(body.get("correlations", []))
                out["events"] += int(body.get("events", 0))
                out["seconds"] += float(body.get("seconds", 0.0))
                done_s += hi - lo
                if progress is not None:
                    progress(f"correlated {done_s / 3600:.1f} h of {total_s / 3600:.1f} h in "
                             f"{time.monotonic() - began:.1f}s: {out['incidents']:,} incidents, "
                             f"{out['correlations']:,} correlations")  # fmt: skip
    except (httpx.HTTPError, ValueError) as exc:
        return {"error": str(exc)}
    out["seconds"] = round(out["seconds"], 3)  # the hub's analysis time, summed over the calls
    out["wall_seconds"] = round(time.monotonic() - began, 3)  # what the progress lines show
    return out


def unsent(generated: int, handed: int, sent: int, given_up: int, late: int = 0) -> dict[str, int]:
    """Why ``generated - sent`` events were not sent (``total``), so that none goes missing silently:

    * ``after_end``: generated ahead (a batch at a time) but due after the run ended (the end of
      ``--duration``, a Ctrl-C, a failure): never handed to the sender;
    * ``late``: due before a wall-clock end of ``--duration`` that came while the sender was behind
      schedule (the destination could not keep up: see ``lag_s``);
    * ``given_up``: handed over and given up after the retries (5xx, throttled 60 times in a row);
    * ``abandoned``: handed over and never answered (a second Ctrl-C, or the destination failed).

    >>> unsent(10_500, 10_008, 10_008, 0)
    {'total': 492, 'after_end': 492, 'late': 0, 'given_up': 0, 'abandoned': 0}
    """
    return {"total": generated - sent, "after_end": generated - handed - late, "late": late, "given_up": given_up,
            "abandoned": max(0, handed - sent - given_up)}  # fmt: skip


def explain_unsent(s: dict[str, Any], not_sent: dict[str, int]) -> str:
    """The stderr line that says where the events ``generated`` but not ``sent`` went (:func:`unsent`).

    >>> explain_unsent({"generated": 10_500, "sent": 10_008, "accepted": 10_000, "rejected": 8, "duplicates": 0},
    ...                unsent(10_500, 10_008, 10_008, 0))  # doctest: +NORMALIZE_WHITESPACE
    'generated 10,500, sent 10,008 (accepted 10,000, rejected 8, duplicates 0); 492 not sent:
    492 generated ahead, due only after the run ended (so not part of it: nothing was lost)'
    """
    reasons = {
        "after_end": "generated ahead, due only after the run ended (so not part of it: nothing was lost)",
        "late": "due before --duration ran out, but the destination was behind schedule (see lag_s)",
        "given_up": "given up after the retries (see last_error)",
        "abandoned": "handed over but never answered (a second Ctrl-C, or the destination failed)",
    }
    parts = [f"{not_sent[k]:,} {why}" for k, why in reasons.items() if not_sent[k]]
    return (f"generated {s['generated']:,}, sent {s['sent']:,} (accepted {s['accepted']:,}, rejected "
            f"{s['rejected']:,}, duplicates {s['duplicates']:,}); {not_sent['total']:,} not sent: {'; '.join(parts)}")


def _run(args: argparse.Namespace, scenario: Scenario) -> int:
    import msgspec
    import numpy as np

    from hub.simulate.generator import GeneratorState, generate_timed
    from hub.simulate.senders import ConcurrentSender, FileSink, GrpcSender, OtlpSender, RestSender, SendError
    from hub.simulate.traces import load_or_fallback

    traces, warning = load_or_fallback(args.traces_dir)
    if warning:
        _err(f"warning: {warning}")
    backfill = args.backfill is not None
    paced = not args.dry_run and not args.unpaced and not backfill
    clock: Literal["schedule", "wall"] = "wall" if (args.unpaced and not args.dry_run) else "schedule"
    t0 = args.start_time if args.start_time is not None else time.time()
    if backfill:  # history that ends now: simulated timestamps from now - SPAN, sent as fast as accepted
        t0 = time.time() - args.backfill
    state = GeneratorState.create(traces, rate=args.rate, t0=t0, tenant=args.tenant, clock=clock,
                                  scenario=scenario)  # fmt: skip
    rng = np.random.default_rng(args.seed)

    sink: FileSink | RestSender | GrpcSender | ConcurrentSender
    try:
        if args.dry_run:
            sink = FileSink(args.output)
        else:
            if args.grpc:
                sink = GrpcSender(args.grpc, tenant=args.tenant, token=args.token, max_retries=args.max_retries)
            else:
                sink = RestSender(args.api, tenant=args.tenant, token=args.token, max_retries=args.max_retries)
            if args.concurrency > 1:
                sink = ConcurrentSender(sink, args.concurrency)
    except OSError as exc:
        _err(f"error: cannot write {args.output}: {exc}")
        return 1
    otlp: OtlpSender | None = None
    if args.otlp and backfill:
        _err("note: --backfill: OTLP is not sent (an OTel SDK stamps its data with the current time)")
    elif args.otlp and not args.dry_run:
        sample = args.otlp_sample
        if sample == "auto":
            sample = min(1.0, OTLP_AUTO_REQUESTS_PER_S / state.request_rate)
        otlp = OtlpSender(args.otlp, tenant=args.tenant, span_sample=args.span_sample, sample=sample,
                          export_interval_s=args.otlp_interval, seed=args.seed)  # fmt: skip
    elif args.otlp:
        _err("note: --dry-run: OTLP is not sent")

    progress = Progress(sys.stderr, quiet=args.quiet, interval=args.progress_interval)
    by_type: dict[str, int] = {}
    start = time.monotonic()
    generated = 0

    def snapshot() -> dict[str, Any]:
        elapsed = max(time.monotonic() - start, 1e-9)
        st = sink.stats
        snap = {
            "elapsed_s": round(elapsed, 3), "target_rate": args.rate,
            "achieved_rate": round(st.sent / elapsed, 1), "generated": generated, **st.as_dict(),
        }  # fmt: skip
        if paced:  # how far behind the schedule the sender is (> 1 s: the destination cannot keep up)
            snap["lag_s"] = round(max(0.0, elapsed - last_t) if generated else 0.0, 3)
        return snap

    def flush(buf: list[Event]) -> None:
        if not buf:
            return
        for ev in buf:
            t = ev["event_type"]
            by_type[t] = by_type.get(t, 0) + 1
        sink.send(buf)
        if otlp is not None:
            otlp.record(buf)

    status, code, error = "ok", 0, None
    batch = args.batch
    limit = args.count if args.count is not None else math.inf
    duration = args.backfill if backfill else args.duration if args.duration is not None else math.inf
    gen_e: list[Event] = []
    gen_t: list[float] = []
    gi = 0
    buf: list[Event] = []
    buf_since = 0.0
    last_t = 0.0
    late = 0  # generated events due before a wall-clock end that the run had no time to send
    stop = threading.Event()
    restore = _graceful_interrupt(stop)
    try:
        while True:
            if stop.is_set():  # first Ctrl-C: stop generating; what was generated is still sent below
                break
            if gi >= len(gen_e):
                want = int(min(batch, limit - generated))
                if want <= 0:
                    break
                gen_e, gen_t = generate_timed(want, rng, state)
                generated += want
                gi = 0
            now = time.monotonic() - start
            if clock == "schedule" and gen_t[gi] >= duration:
                if paced and now < duration:  # a quiet spell at the end: the run still lasts --duration
                    flush(buf)
                    buf = []
                    while not stop.is_set() and (rest := duration - (time.monotonic() - start)) > 0:
                        time.sleep(min(rest, 0.1))
                break
            room = batch - len(buf)
            hi = min(len(gen_e), gi + room)
            if not args.dry_run and not backfill and now >= duration:  # wall-clock end, even when behind schedule
                if paced:
                    due = bisect.bisect_left(gen_t, min(now, duration), gi, hi)
                    buf.extend(gen_e[gi:due])
                    late = bisect.bisect_left(gen_t, min(now, duration), gi) - due  # due, but no room left
                break
            if paced:
                hi = bisect.bisect_right(gen_t, now, gi, hi)
                if hi == gi:  # nothing due yet
                    if buf and now - buf_since >= args.flush_interval:
                        flush(buf)
                        buf = []
                    progress.update(snapshot())
                    wait = gen_t[gi] - now
                    if buf:
                        wait = min(wait, buf_since + args.flush_interval - now)
                    time.sleep(min(max(wait, 0.0005), 0.1))
                    continue
            if clock == "schedule" and duration < math.inf:
                hi = bisect.bisect_left(gen_t, duration, gi, hi)
                if hi == gi:
                    break
            if not buf:
                buf_since = now
            buf.extend(gen_e[gi:hi])
            last_t = gen_t[hi - 1]
            gi = hi
            if len(buf) >= batch:
                flush(buf)
                buf = []
            progress.update(snapshot())
        flush(buf)
        buf = []
        if isinstance(sink, ConcurrentSender):
            sink.drain()
        if stop.is_set():
            status, code = "interrupted", 130
    except KeyboardInterrupt:
        status, code = "interrupted", 130
    except SendError as exc:
        status, code, error = "failed", 1, str(exc)
    finally:
        restore()
        if isinstance(sink, FileSink):
            sink.close()
    summary = snapshot()
    progress.update(summary, force=True)
    progress.close()
    if error:
        _err(f"error: {error}")
    otlp_stats: dict[str, Any] | None = None
    if otlp is not None:
        with contextlib.suppress(KeyboardInterrupt):
            otlp.shutdown()
        otlp_stats = {"endpoint": args.otlp, **otlp.stats()}
        failed = sum(otlp.export_failures.values())
        if failed:
            _err(f"warning: {failed} OTLP export(s) to {args.otlp} failed: {otlp.export_failures}")
    if not isinstance(sink, FileSink):
        sink.close()
    correlated: dict[str, Any] | None = None
    if backfill and code == 0 and not args.dry_run:
        if args.api and not args.grpc:
            correlated = correlate_span(args.api, t0, t0 + args.backfill + 1.0, tenant=args.tenant, token=args.token,
                                        progress=None if args.quiet else _err)  # fmt: skip
            if "error" in correlated:  # the events are in: resending them would duplicate the history
                _err(f"error: the events were delivered, but the backfilled span could not be correlated: "
                     f"{correlated['error']}; do not resend, ask again with POST /api/v1/correlations/analyze")  # fmt: skip
                status, code = "uncorrelated", 3
        else:
            _err("note: the backfilled span is not correlated over gRPC; POST /api/v1/correlations/analyze does it")
    summary["not_sent"] = not_sent = unsent(generated, sum(by_type.values()), sink.stats.sent,
                                            sink.stats.failed_events, late)  # fmt: skip
    if not_sent["total"] and not args.quiet:
        _err(explain_unsent(summary, not_sent))
    summary.update({
        "status": status, "exit_code": code, "mode": "dry-run" if args.dry_run else "grpc" if args.grpc else "rest",
        "destination": args.output if isinstance(sink, FileSink) else sink.url,
        "paced": paced, "backfill_s": args.backfill, "correlated": correlated, "tenant": args.tenant, "seed": args.seed, "scenario": scenario.name,
        "events_by_type": dict(sorted(by_type.items())), "requests_simulated": state.requests,
        "simulated_s": round(state.sim_time, 3),
        "traces": traces.describe(), "otlp": otlp_stats, "error": error,
    })  # fmt: skip
    if args.truth:
        truth = scenario.truth()
        truth.update({"seed": args.seed, "t0": t0, "tenant": args.tenant})
        try:
            Path(args.truth).write_bytes(msgspec.json.format(msgspec.json.encode(truth)) + b"\n")
            summary["truth"] = args.truth
        except OSError as exc:
            _err(f"error: cannot write --truth {args.truth}: {exc}")
            code = code or 1
            summary["exit_code"] = code
    sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
