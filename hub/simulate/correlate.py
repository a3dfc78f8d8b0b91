"""Correlating a backfilled span after ``hub simulate --backfill``: the hub's streaming correlation engine sees
only live data, so :func:`correlate_span` asks ``POST /api/v1/correlations/analyze`` for the span, in
chunks of :data:`ANALYZE_CHUNK_S` (halved while the hub says a call was truncated)::

    from hub.simulate.correlate import correlate_span

    result = correlate_span("http://127.0.0.1:8080", t0, t0 + 2 * 86_400, tenant="acme", token=None)
    # {"incidents": ..., "correlations": ..., "events": ..., "calls": ..., "seconds": ..., "truncated": ...,
    #  "wall_seconds": ...}, or {"error": "HTTP 401: ..."}

httpx is imported on the first call, not with the module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx


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
