"""Benchmark the web console: page-load time of the executive summary under 100 concurrent users.

    python -m benchmarks.console                # 100 users x 5 page loads on 20,000 seeded events
    python -m benchmarks.console --quick        # 100 users x 2 loads on 4,000 events (CI)
    python -m benchmarks.console --users 50 --loads 10 --events 50000

Starts ``hub run`` as a subprocess (auth off, no fsync) on free ports, seeds it with simulated traffic
(``hub.simulate``) spread over the last two days, then runs ``--users`` simulated users with httpx
(async, one client each, at most 6 connections like a browser). One page load is what a browser does
for ``/``: the HTML; on a user's first visit its four assets (the pages link them with a content hash,
``?v=``, and ``Cache-Control: immutable``, so later visits fetch none); then the page's 11 queries in
one ``POST /api/v1/query/batch`` (console.js batches the queries its panels issue in the same tick;
the bodies pages.js sends: relative ranges, which the hub's query cache keeps 10 s;
``--no-cache-share`` makes each user's bodies distinct, as with a live feed that invalidates the cache
at every commit). The time of a load runs from the first request to the last response. In the same run
the previous console is measured too (``unbatched_*``): three assets revalidated at every visit and
11 separate ``POST /api/v1/query`` calls in parallel.

The baseline is ``GET /healthz`` by the same number of concurrent users, as many times; for scale, the
same page is also loaded 10 times by one user alone (``single_user_*``).

The last line of output is one JSON object: ``page_p50_ms``, ``page_p95_ms``, ``page_p99_ms``,
``unbatched_page_p50_ms``, ``unbatched_page_p95_ms``, ``healthz_p95_ms``, ``single_user_p95_ms``,
``api_calls_per_page``, ``queries_per_page``, ``pages_per_s``, ``errors``, the parameters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np

from hub.simulate import GeneratorState, encode_batch, generate_batch, synthetic_traces

REPO = Path(__file__).resolve().parents[1]
DUR = {"event_type": "telemetry", "name": "gen_ai.client.operation.duration"}
ASSETS = ("/console/static/console.css", "/console/static/console.js", "/console/static/pages.js")
VENDOR = "/console/static/vendor/echarts.min.js"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_hub(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``hub run`` on free ports; returns the process and the API's base URL once it is ready."""
    api_port = _free_port()
    args = [sys.executable, "-m", "hub.cli", "run", "--data-dir", str(data_dir), "--api-port", str(api_port),
            "--otlp-grpc-port", str(_free_port()), "--otlp-http-port", str(_free_port()), "--no-fsync",
            "--log-level", "warning"]  # fmt: skip
    log = open(data_dir.parent / "hub.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    base = f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"hub exited early: {(data_dir.parent / 'hub.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("hub did not become ready in 60 s")


def seed(base: str, events: int, days: float = 2.0) -> int:
    """``events`` simulated native events over the last ``days``; returns how many were accepted."""
    now = time.time()
    state = GeneratorState.create(synthetic_traces(), rate=events / (days * 86_400), t0=now - days * 86_400)
    rng = np.random.default_rng(7)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    accepted = 0
    with httpx.Client(timeout=60) as client:
        while True:
            batch = [e for e in generate_batch(1000, rng, state) if e["timestamp"] < stamp]
            if batch:
                r = client.post(f"{base}/api/v1/events", content=encode_batch(batch),
                                headers={"content-type": "application/json"})  # fmt: skip
                r.raise_for_status()
                accepted += int(r.json()["accepted"])
            if len(batch) < 1000:
                return accepted


def summary_bodies(salt: str | None = None) -> list[dict[str, Any]]:
    """The 11 unified queries the executive summary page sends (console/static/pages.js); a ``salt``
    adds a filter that keeps every event (``environment ne <salt>``) but defeats the shared cache."""
    tr = {"last": "24h"}  # pages.js sends the current window of a relative range as "last" (cached 10 s)
    sec = [{"field": "event_type", "operator": "eq", "value": "security"}]
    gov = [{"field": "event_type", "operator": "eq", "value": "governance"}]
    bodies: list[dict[str, Any]] = [
        {"metric": DUR, "aggregation": {"functions": ["count", "p95"]}},
        {"metric": {"event_type": "cost"}, "aggregation": {"functions": ["sum"]}},
        {"filters": sec, "aggregation": {"functions": ["count"]}},
        {"filters": gov, "aggregation": {"functions": ["count"], "group_by": ["payload.compliant"]}},
        {"metric": DUR, "aggregation": {"functions": ["count", "p95"], "time_bucket": "1h"}},
    ]
    out = [{"time_range": tr, "filters": [], "limit": 10000, **b} for b in bodies]
    nocache = [{"field": "environment", "operator": "ne", "value": salt}] if salt else []
    for last in ("24h", "7d", "30d"):
        out.append({"time_range": {"last": last}, "metric": DUR, "filters": nocache, "limit": 10000,
                    "aggregation": {"functions": ["count"], "group_by": ["model"]}})  # fmt: skip
        out.append({"time_range": {"last": last}, "metric": {"event_type": "cost"}, "filters": nocache, "limit": 10000,
                    "aggregation": {"functions": ["sum"], "group_by": ["model"]}})  # fmt: skip
    for b in out[: len(bodies)]:
        b["filters"] = [*b.get("filters", []), *nocache]
    return out


_LINK = re.compile(r'(?:src|href)="(/console/static/[^"]+)"')


async def page_load(client: httpx.AsyncClient, first: bool, share_cache: bool = True, batched: bool = True) -> float:
    t0 = time.perf_counter()
    html = await client.get("/")
    html.raise_for_status()
    bodies = summary_bodies(None if share_cache else uuid.uuid4().hex)
    if batched:  # the console now: versioned immutable assets (first visit only), one batch of queries
        assets = [client.get(a) for a in _LINK.findall(html.text)] if first else []
        calls = [client.post("/api/v1/query/batch", json={"queries": bodies})]
    else:  # the console before: assets revalidated at every visit, one call per query
        assets = [client.get(a) for a in ASSETS] + ([client.get(VENDOR)] if first else [])
        calls = [client.post("/api/v1/query", json=b) for b in bodies]
    for r in await asyncio.gather(*assets):
        r.raise_for_status()
    for r in await asyncio.gather(*calls):
        r.raise_for_status()
        if batched and any(x["status"] != 200 for x in r.json()["results"]):
            raise httpx.HTTPStatusError("a query of the batch failed", request=r.request, response=r)
    return time.perf_counter() - t0


class Run(NamedTuple):
    first: list[float]  # seconds of each user's first load (empty caches)
    repeat: list[float]  # seconds of the later loads
    errors: int
    wall: float

    @property
    def all(self) -> list[float]:
        return self.first + self.repeat


async def run_users(base: str, users: int, loads: int, fn: str, share_cache: bool = True) -> Run:
    """``users`` concurrent users doing ``loads`` each of ``fn`` ('page', 'unbatched' or 'healthz')."""
    first: list[float] = []
    times: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=6, max_keepalive_connections=6)
    # One TLS context for all (the URL is plain http): httpx builds one per client otherwise, ~37 ms of CPU
    # each, and the users are all set up before any starts, so that no user's clock runs while the others'
    # clients are built. Until 27 Nov 2026 neither held: 100 clients took ~3.7 s of the benchmark's own CPU
    # while the first users' first loads were timed (first-visit and /healthz p95s of seconds).
    tls = ssl.create_default_context()
    clients = [httpx.AsyncClient(base_url=base, limits=limits, timeout=60, verify=tls) for _ in range(users)]

    async def user(client: httpx.AsyncClient) -> None:
        nonlocal errors
        async with client:
            for i in range(loads):
                try:
                    if fn in ("page", "unbatched"):
                        took = await page_load(client, i == 0, share_cache, batched=fn == "page")
                        (first if i == 0 else times).append(took)
                    else:
                        t0 = time.perf_counter()
                        (await client.get("/healthz")).raise_for_status()
                        times.append(time.perf_counter() - t0)
                except httpx.HTTPError as exc:
                    errors += 1
                    if errors <= 3:
                        code = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else ""
                        print(f"error: {type(exc).__name__} {code} {str(exc)[:160]}", file=sys.stderr)

    t0 = time.perf_counter()
    await asyncio.gather(*(user(c) for c in clients))
    return Run(first, times, errors, time.perf_counter() - t0)


def pct(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile in milliseconds (one decimal); None without values."""
    if not values:
        return None
    return round(float(np.percentile(np.asarray(values) * 1000.0, q)), 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small run for CI: 4,000 events, 2 loads per user")
    ap.add_argument("--users", type=int, default=100, help="concurrent simulated users (default 100)")
    ap.add_argument("--loads", type=int, help="page loads per user (default 5; 2 with --quick)")
    ap.add_argument("--events", type=int, help="seeded events (default 20,000; 4,000 with --quick)")
    ap.add_argument("--no-cache-share", action="store_true", help="distinct query bodies per page load (no cache hits)")
    ap.add_argument("--url", help="benchmark a running hub at this URL instead (no start, no seeding)")
    args = ap.parse_args(argv)
    loads = args.loads or (2 if args.quick else 5)
    events = args.events or (4_000 if args.quick else 20_000)
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        proc = None
        if args.url:
            base, seeded = args.url.rstrip("/"), 0
        else:
            proc, base = start_hub(Path(tmp) / "data")
        try:
            if proc is not None:
                t0 = time.perf_counter()
                seeded = seed(base, events)
                time.sleep(1.0)  # let the writer commit the last batch
                print(f"seeded {seeded} events in {time.perf_counter() - t0:.1f} s")
            asyncio.run(run_users(base, args.users, 1, "unbatched"))  # warm-up, at full concurrency
            share = not args.no_cache_share
            alone = asyncio.run(run_users(base, 1, 10, "page", share))
            old = asyncio.run(run_users(base, args.users, loads, "unbatched", share))
            page = asyncio.run(run_users(base, args.users, loads, "page", share))
            hz = asyncio.run(run_users(base, args.users, loads, "healthz"))
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    result = {
        "benchmark": "console", "users": args.users, "loads_per_user": loads, "events": seeded,
        "api_calls_per_page": 1, "queries_per_page": len(summary_bodies()), "cache_shared": not args.no_cache_share,
        "page_p50_ms": pct(page.all, 50), "page_p95_ms": pct(page.all, 95), "page_p99_ms": pct(page.all, 99),
        "page_mean_ms": round(statistics.fmean(page.all) * 1000, 1) if page.all else None,
        "repeat_page_p50_ms": pct(page.repeat, 50), "repeat_page_p95_ms": pct(page.repeat, 95),
        "first_page_p50_ms": pct(page.first, 50), "first_page_p95_ms": pct(page.first, 95),
        "pages_per_s": round(len(page.all) / page.wall, 1) if page.wall else None,
        "unbatched_page_p50_ms": pct(old.all, 50), "unbatched_page_p95_ms": pct(old.all, 95),
        "unbatched_repeat_page_p95_ms": pct(old.repeat, 95), "unbatched_first_page_p95_ms": pct(old.first, 95),
        "unbatched_pages_per_s": round(len(old.all) / old.wall, 1) if old.wall else None,
        "healthz_p50_ms": pct(hz.all, 50), "healthz_p95_ms": pct(hz.all, 95),
        "single_user_p50_ms": pct(alone.all, 50), "single_user_p95_ms": pct(alone.all, 95),
        "errors": page.errors + old.errors + hz.errors + alone.errors, "quick": bool(args.quick),
    }  # fmt: skip
    print(f"summary page, {args.users} concurrent users x {loads}: p50 {result['page_p50_ms']} ms, "
          f"p95 {result['page_p95_ms']} ms, p99 {result['page_p99_ms']} ms; {result['pages_per_s']} pages/s")  # fmt: skip
    print(f"  repeat visits p50 {result['repeat_page_p50_ms']} ms, p95 {result['repeat_page_p95_ms']} ms; "
          f"first visits (empty cache) p50 {result['first_page_p50_ms']} ms, p95 {result['first_page_p95_ms']} ms")  # fmt: skip
    print(f"previous console (11 calls, assets revalidated): p50 {result['unbatched_page_p50_ms']} ms, "
          f"p95 {result['unbatched_page_p95_ms']} ms; {result['unbatched_pages_per_s']} pages/s")  # fmt: skip
    print(f"one user alone, 10 loads: p50 {result['single_user_p50_ms']} ms, p95 {result['single_user_p95_ms']} ms")
    print(f"baseline /healthz, same concurrency: p50 {result['healthz_p50_ms']} ms, p95 {result['healthz_p95_ms']} ms")
    print(json.dumps(result))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
