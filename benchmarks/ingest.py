"""End-to-end native-event ingest rate: 1,000-event batches to ``POST /api/v1/events``.

Starts ``hub run`` as a subprocess on free ports with a fresh data directory, sends batches from
``--connections`` concurrent HTTP/1.1 connections for ``--duration`` seconds, then waits until every
accepted event is stored (the store's pending-rows gauge reaches 0) and counts the rows in DuckDB.
In the same run it measures the bare decode rate of the same bodies with msgspec (the baseline), and
the CPU time the hub process used per stored event (user + system, all its threads, from the load's start
to the last row stored; ``loop_thread_cpu_us_per_event``: its main thread's, the event loop's, alone): on a
shared machine the rates follow the neighbours' load, the CPU per event much less so.

    .venv/bin/python benchmarks/ingest.py --duration 10
    .venv/bin/python benchmarks/ingest.py --quick
    .venv/bin/python benchmarks/ingest.py --duration 10 --event-loop asyncio   # the hub on asyncio's own loop

The hub is started as ``hub run`` is (``hub.cli``: the loop ``service.event_loop`` names, uvloop by default);
the JSON says which loop served (``event_loop``, resolved from the flag and the config as ``hub run`` does).

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import duckdb
import httpx
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hub.cli import resolve_event_loop
from hubcore.config import load_config
from hubcore.model.events import PAYLOAD_TYPES, AnalyticsEvent
from tests.helpers.events import make_event
from tests.helpers.hub import start_hub_process, stop_hub_process

MIX = ["telemetry"] * 5 + ["cost"] * 3 + ["policy", "security", "governance"]


def make_template(batch: int) -> tuple[bytes, int]:
    """A batch body with ``{ID}`` placeholders (so each send carries fresh event ids)."""
    parts = []
    for i in range(batch):
        ev = make_event(MIX[i % len(MIX)], event_id="@@ID@@", correlation_id=f"req-{i // 3}")
        parts.append(json.dumps(ev, separators=(",", ":")).encode())
    body = b"[" + b",".join(parts) + b"]"
    return body, body.count(b"@@ID@@")


_RUN = uuid.uuid4().hex[:12].encode()
_counter = [0]


def fresh_body(template_parts: list[bytes]) -> bytes:
    """The template with unique event ids (run prefix + counter: cheap, so the client stays light)."""
    start = _counter[0]
    _counter[0] += len(template_parts) - 1
    out = [template_parts[0]]
    for i, part in enumerate(template_parts[1:]):
        out.append(b"%s-%09d" % (_RUN, start + i))
        out.append(part)
    return b"".join(out)


def bare_decode_rate(body: bytes, n_events: int, seconds: float = 2.0) -> float:
    """msgspec: decode the batch, then every envelope and payload (what the hub must at least do)."""
    raws_dec = msgspec.json.Decoder(list[msgspec.Raw])
    env_dec = msgspec.json.Decoder(AnalyticsEvent)
    pay = {k: msgspec.json.Decoder(v) for k, v in PAYLOAD_TYPES.items()}
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for raw in raws_dec.decode(body):
            ev = env_dec.decode(raw)
            pay[ev.event_type].decode(ev.payload)
        done += n_events
    return done / (time.perf_counter() - start)


async def load(api: str, parts: list[bytes], duration: float, connections: int) -> dict[str, float]:
    stats = {"accepted": 0, "requests": 0, "throttled": 0, "errors": 0}
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=api, timeout=60, limits=limits) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                body = fresh_body(parts)
                r = await client.post("/api/v1/events", content=body, headers={"content-type": "application/json"})
                stats["requests"] += 1
                if r.status_code == 202:
                    stats["accepted"] += r.json()["accepted"]
                elif r.status_code in (429, 503):
                    stats["throttled"] += 1
                    await asyncio.sleep(float(r.headers.get("retry-after", "1")) / 10)
                else:
                    stats["errors"] += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
    return stats


def pending_rows(api: str) -> float:
    text = httpx.get(f"{api}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith('hub_queue_depth{queue="store_pending_rows"}'):
            return float(line.split()[-1])
    return float("nan")


def process_cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds of process ``pid`` so far, or of its thread ``tid`` only (Linux ``/proc``; NaN
    elsewhere). The main thread (``tid == pid``) runs the event loop: uvicorn, Starlette, the gRPC server."""
    stat = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--no-fsync", action="store_true", help="run the hub without WAL fsync")
    ap.add_argument("--quick", action="store_true", help="3 s run for CI")
    ap.add_argument("--config", help="hub YAML config (e.g. to switch analytics off and see the bare ingest path)")
    ap.add_argument(
        "--event-loop", choices=["auto", "asyncio", "uvloop"], help="hub run --event-loop (default: the config's)"
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.duration = 3.0
    template, _n_ids = make_template(args.batch)
    parts = template.split(b"@@ID@@")
    sample = fresh_body(parts)
    baseline = bare_decode_rate(sample, args.batch, 1.0 if args.quick else 3.0)
    tmp = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    extra = ["--config", args.config] if args.config else []
    event_loop = resolve_event_loop(args.event_loop or load_config(args.config).service.event_loop)
    if args.event_loop:
        extra += ["--event-loop", args.event_loop]
    hp = start_hub_process(tmp / "data", "--log-level", "warning", *extra, fsync=not args.no_fsync)
    try:
        cpu0 = process_cpu_seconds(hp.proc.pid)
        loop0 = process_cpu_seconds(hp.proc.pid, hp.proc.pid)
        t0 = time.perf_counter()
        stats = asyncio.run(load(hp.api, parts, args.duration, args.connections))
        sent_s = time.perf_counter() - t0
        while pending_rows(hp.api) > 0:
            time.sleep(0.05)
        stored_s = time.perf_counter() - t0
        hub_cpu = process_cpu_seconds(hp.proc.pid) - cpu0
        loop_cpu = process_cpu_seconds(hp.proc.pid, hp.proc.pid) - loop0
    finally:
        stop_hub_process(hp)
    con = duckdb.connect(str(tmp / "data" / "hub.duckdb"), read_only=True)
    stored = con.execute("SELECT count(*) FROM events").fetchone()[0]
    points = con.execute("SELECT count(*) FROM all_metric_points").fetchone()[0]
    con.close()
    size = sum(f.stat().st_size for f in (tmp / "data").rglob("*") if f.is_file())
    shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "benchmark": "ingest_rest",
        "batch": args.batch,
        "connections": args.connections,
        "duration_s": round(sent_s, 2),
        "accepted": int(stats["accepted"]),
        "stored": int(stored),
        "metric_points": int(points),
        "throttled_requests": int(stats["throttled"]),
        "errors": int(stats["errors"]),
        "accepted_per_s": round(stats["accepted"] / sent_s),
        "stored_per_s_end_to_end": round(stored / stored_s),
        "bare_msgspec_decode_per_s": round(baseline),
        "ratio_to_bare_decode": round((stored / stored_s) / baseline, 3),
        "hub_cpu_us_per_event": round(hub_cpu / max(stored, 1) * 1e6, 1),
        "loop_thread_cpu_us_per_event": round(loop_cpu / max(stored, 1) * 1e6, 2),
        "bytes_per_event_on_disk": round(size / max(stored, 1), 1),
        "fsync": not args.no_fsync,
        "event_loop": event_loop,
        "cpus": os.cpu_count(),
    }
    assert stored == stats["accepted"], f"stored {stored} != accepted {stats['accepted']}"
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    raise SystemExit(main())
