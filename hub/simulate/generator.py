"""Pure, fast generation of native events (schema 1.0.0) for the six source modules.

One simulated LLM request yields a telemetry event (llm-observatory), a cost event (llm-costops,
unless the request failed), and sometimes a policy evaluation (llm-policy-engine), a security finding
(llm-sentinel), an audit record or violation (llm-governance) and a registry update (llm-registry); they
share the request's ``correlation_id``. The registry's assets are announced at the start.

All random draws are vectorised per chunk of requests (numpy); the only per-event Python work is
building the dicts. Timestamps follow a simulated schedule: request ``k`` happens at ``t0 + T_k`` where
the gaps ``T_k - T_{k-1}`` are empirical inter-arrival gaps (block-sampled, so bursts stay bursts)
scaled to the requested event rate.

This module is the entry point; the work is split by purpose:

* :mod:`hub.simulate.traces` — the empirical token counts and inter-arrival gaps;
* :mod:`hub.simulate.tables` — the catalog and token pools as numpy arrays;
* :mod:`hub.simulate.state` — :class:`GeneratorState`: rate, simulated clock, gap schedule;
* :mod:`hub.simulate.traffic` — one chunk of requests and their correlated events;
* :mod:`hub.simulate.events` — the event envelope, side-event builders and the JSON encoding;
* :mod:`hub.simulate.scenarios` — incidents injected through the state's hooks.

    >>> import numpy as np
    >>> from hub.simulate.traces import synthetic_traces
    >>> state = GeneratorState.create(synthetic_traces(), rate=1000.0, t0=1.7e9)
    >>> events = generate_batch(100, np.random.default_rng(7), state)
    >>> len(events), events[0]["event_type"], events[0]["source_module"]
    (100, 'metadata', 'llm-registry')
    >>> encode_batch(events)[:1]
    b'['
"""

from __future__ import annotations

import gc

import numpy as np

from hub.simulate.events import (
    DURATION_METRIC,
    SCHEMA_VERSION,
    Event,
    encode_batch,
    encode_lines,
    registry_events,
    security_event,
    uuid4_strings,
)
from hub.simulate.state import (
    EXPECTED_EVENTS_PER_REQUEST,
    GAP_CLIP,
    GAP_WINDOW_S,
    MAX_GAP_BLOCK,
    MIN_GAP_BLOCK,
    GeneratorState,
)
from hub.simulate.traffic import MAX_LATENCY_MS, chunk

__all__ = [
    "DURATION_METRIC",
    "EXPECTED_EVENTS_PER_REQUEST",
    "GAP_CLIP",
    "GAP_WINDOW_S",
    "MAX_CHUNK_SECONDS",
    "MAX_GAP_BLOCK",
    "MAX_LATENCY_MS",
    "MIN_GAP_BLOCK",
    "SCHEMA_VERSION",
    "Event",
    "GeneratorState",
    "encode_batch",
    "encode_lines",
    "generate_batch",
    "generate_timed",
    "registry_events",
    "security_event",
    "uuid4_strings",
]

MAX_CHUNK_SECONDS = 0.5  # one chunk of requests spans at most this much simulated time


def generate_timed(n: int, rng: np.random.Generator, state: GeneratorState) -> tuple[list[Event], list[float]]:
    """Exactly ``n`` events and their simulated times (seconds since ``state.t0``), in order."""
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of acyclic dicts: the cyclic GC would only slow this down (about 2x)
    try:
        return _generate_timed(n, rng, state)
    finally:
        if gc_was_enabled:
            gc.enable()


def _generate_timed(n: int, rng: np.random.Generator, state: GeneratorState) -> tuple[list[Event], list[float]]:
    pend_e, pend_t = state._pending_events, state._pending_times
    if not state.registry_announced:
        state.registry_announced = True
        reg = registry_events(state, rng)
        pend_e.extend(reg)
        pend_t.extend([state.sim_time] * len(reg))
    max_req = max(16, int(state.request_rate * MAX_CHUNK_SECONDS))
    while len(pend_e) < n:
        need = n - len(pend_e)
        m = min(max_req, max(8, int(need / EXPECTED_EVENTS_PER_REQUEST) + 4))
        ev, tt = chunk(m, rng, state)
        pend_e.extend(ev)
        pend_t.extend(tt)
    out_e, out_t = pend_e[:n], pend_t[:n]
    del pend_e[:n]
    del pend_t[:n]
    state.events += n
    return out_e, out_t


def generate_batch(n: int, rng: np.random.Generator, state: GeneratorState) -> list[Event]:
    """Exactly ``n`` native events (dicts in the JSON shape of ``hubcore.model.events``)."""
    return generate_timed(n, rng, state)[0]
