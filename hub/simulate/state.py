"""What carries over between batches: the rate, the simulated clock, the arrival-gap schedule, the
scenario's steering (per-model latency and per-team traffic multipliers) and the pending events.

Arrival times follow empirical inter-arrival gaps: contiguous blocks from a random place in the trace
(bursts stay bursts), each block rescaled to mean 1, then scaled to the requested rate.

    >>> import numpy as np
    >>> from hub.simulate.traces import synthetic_traces
    >>> state = GeneratorState.create(synthetic_traces(), rate=1000.0, t0=1.7e9)
    >>> round(state.request_rate, 1), len(state.next_gaps(5, np.random.default_rng(1)))
    (422.9, 5)
    >>> state.timestamp_strings(np.array([0.0, 1.5]))
    ['2023-11-14T22:13:20.000Z', '2023-11-14T22:13:21.500Z']
    >>> state.timestamp_strings(np.array([0.0]), offset_ms=-4)
    ['2023-11-14T22:13:19.996Z']
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from hub.simulate import catalog as C
from hub.simulate.events import Event
from hub.simulate.tables import Tables
from hub.simulate.traces import TraceData

if TYPE_CHECKING:
    from hub.simulate.scenarios import Scenario

# Gaps are read in contiguous blocks from a random place in the trace (bursts stay bursts), each block
# rescaled to mean 1 so that every GAP_WINDOW_S seconds or so carry the requested rate.
GAP_WINDOW_S = 2.0
MIN_GAP_BLOCK = 16
MAX_GAP_BLOCK = 4096
GAP_CLIP = 20.0  # cap single silences at 20 mean gaps (the Azure code trace has hour-long pauses)

EXPECTED_EVENTS_PER_REQUEST = 1.0 + (1.0 - C.P_ERROR) + C.P_POLICY + C.P_SECURITY + C.P_GOVERNANCE + C.P_REGISTRY_UPDATE


def _clipped_gaps(gaps: np.ndarray) -> np.ndarray:
    g = np.clip(np.asarray(gaps, dtype=np.float64), 0.0, GAP_CLIP)
    if len(g) < MIN_GAP_BLOCK or g.sum() <= 0:
        return np.ones(MAX_GAP_BLOCK)
    return g


@dataclass
class GeneratorState:
    """Everything that carries over between batches. Build it with :meth:`create`.

    ``rate`` is native events per second (the request rate is derived from the expected number of
    events per request). ``clock="schedule"`` stamps events at ``t0 + simulated arrival time``;
    ``clock="wall"`` stamps them with the wall clock at generation (for unpaced benchmarks).
    Scenarios steer the generator through ``latency_mult`` (per model) and ``team_mult`` (per team).
    """

    traces: TraceData
    rate: float
    t0: float
    tenant: str | None = None
    clock: Literal["schedule", "wall"] = "schedule"
    scenario: Scenario | None = None
    sim_time: float = 0.0
    requests: int = 0
    events: int = 0
    registry_announced: bool = False
    latency_mult: np.ndarray = field(default_factory=lambda: np.ones(len(C.MODELS)))
    team_mult: np.ndarray = field(default_factory=lambda: np.ones(len(C.TEAMS)))
    model_revision: list[int] = field(default_factory=lambda: [0] * len(C.MODELS))
    tables: Tables | None = None
    _gaps: np.ndarray = field(default_factory=lambda: np.ones(MAX_GAP_BLOCK))
    _block: np.ndarray = field(default_factory=lambda: np.ones(0))
    _block_pos: int = 0
    _pending_events: list[Event] = field(default_factory=list)
    _pending_times: list[float] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        traces: TraceData,
        *,
        rate: float = 1000.0,
        t0: float | None = None,
        tenant: str | None = None,
        clock: Literal["schedule", "wall"] = "schedule",
        scenario: Scenario | None = None,
    ) -> GeneratorState:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of events per second, got {rate!r}")
        st = cls(traces, rate, time.time() if t0 is None else t0, tenant, clock, scenario)
        st.tables = Tables.build(traces)
        st._gaps = _clipped_gaps(traces.gaps)
        if st.scenario is not None:
            st.scenario.setup(st)
        return st

    @property
    def request_rate(self) -> float:
        """Requests per second before scenario multipliers."""
        return self.rate / EXPECTED_EVENTS_PER_REQUEST

    def next_gaps(self, m: int, rng: np.random.Generator) -> np.ndarray:
        """``m`` gaps (mean 1 per block of about GAP_WINDOW_S seconds), in trace order within a block."""
        block = int(min(MAX_GAP_BLOCK, max(MIN_GAP_BLOCK, self.request_rate * GAP_WINDOW_S)))
        block = min(block, len(self._gaps))
        out = np.empty(m)
        got = 0
        while got < m:
            if self._block_pos >= len(self._block):
                start = int(rng.integers(0, len(self._gaps) - block + 1))
                blk = self._gaps[start : start + block]
                mean = blk.mean()
                self._block = blk / mean if mean > 0 else np.ones(block)
                self._block_pos = 0
            take = min(m - got, len(self._block) - self._block_pos)
            out[got : got + take] = self._block[self._block_pos : self._block_pos + take]
            self._block_pos += take
            got += take
        return out

    def timestamp_strings(self, sim_times: np.ndarray, offset_ms: int = 0) -> list[str]:
        """ISO-8601 UTC times (milliseconds) of ``sim_times``, ``offset_ms`` whole milliseconds later (exactly,
        so that the events of one request keep their order)."""
        if self.clock == "wall":
            ms = np.full(len(sim_times), int(time.time() * 1000), dtype=np.int64)
        else:
            ms = np.round((self.t0 + sim_times) * 1000.0).astype(np.int64)
        ms = ms + offset_ms
        strings: list[str] = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms", timezone="UTC").tolist()
        return strings
