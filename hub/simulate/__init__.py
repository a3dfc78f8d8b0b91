"""``hub simulate``: a realistic traffic generator for the six LLM platform modules.

Library API (for benchmarks and other tools)::

    import numpy as np
    from hub.simulate import GeneratorState, encode_batch, generate_batch, load_or_fallback

    traces, warning = load_or_fallback()          # empirical traces, or the parametric fallback
    state = GeneratorState.create(traces, rate=10_000, clock="wall")
    body = encode_batch(generate_batch(1000, np.random.default_rng(1), state))

The CLI is :func:`hub.simulate.cli.main`; see ``docs/simulate.md``.
"""

from hub.simulate.generator import (
    GeneratorState,
    encode_batch,
    encode_lines,
    generate_batch,
    generate_timed,
)
from hub.simulate.scenarios import SCENARIOS, Scenario, make_scenario, register
from hub.simulate.traces import TraceData, load_or_fallback, load_traces, synthetic_traces

__all__ = [
    "SCENARIOS",
    "GeneratorState",
    "Scenario",
    "TraceData",
    "encode_batch",
    "encode_lines",
    "generate_batch",
    "generate_timed",
    "load_or_fallback",
    "load_traces",
    "make_scenario",
    "register",
    "synthetic_traces",
]
