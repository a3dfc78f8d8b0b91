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

The options and their checks are in :mod:`hub.simulate.arguments`, the progress line and the summary's
account of unsent events in :mod:`hub.simulate.progress`, the correlation of a backfilled span in
:mod:`hub.simulate.correlate`; their public names are importable from here too.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import math
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hub.simulate.arguments import (
    DEFAULT_MAX_AGE_S,
    MAX_BATCH,
    OTLP_AUTO_REQUESTS_PER_S,
    _UsageError,
    _validate,
    build_parser,
)
from hub.simulate.correlate import ANALYZE_CHUNK_S, ANALYZE_MIN_S, correlate_span
from hub.simulate.progress import Progress, _err, _graceful_interrupt, explain_unsent, unsent
from hub.simulate.scenarios import SCENARIOS, Scenario, ScenarioError, make_scenario

if TYPE_CHECKING:
    from hub.simulate.generator import Event
    from hub.simulate.senders import ConcurrentSender, FileSink, GrpcSender, OtlpSender, RestSender

#: what this module defined before the split, importable from here as before
__all__ = [
    "ANALYZE_CHUNK_S",
    "ANALYZE_MIN_S",
    "DEFAULT_MAX_AGE_S",
    "MAX_BATCH",
    "OTLP_AUTO_REQUESTS_PER_S",
    "Progress",
    "build_parser",
    "correlate_span",
    "explain_unsent",
    "main",
    "unsent",
]


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
        if otlp is not None:  # first: it tags the events of the traced requests with their traceparent
            otlp.record(buf)
        sink.send(buf)

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
            # events carry millisecond timestamps: a sub-millisecond start would leave t0's first millisecond out
            span_start = math.floor(t0 * 1000.0) / 1000.0
            correlated = correlate_span(args.api, span_start, t0 + args.backfill + 1.0, tenant=args.tenant, token=args.token,
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
