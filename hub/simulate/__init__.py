"""``hub simulate``: a realistic traffic generator for the six LLM platform modules.

Library API (for benchmarks and other tools)::

    import numpy as np
    from hub.simulate import GeneratorState, encode_batch, generate_batch, load_or_fallback

    traces, warning = load_or_fallback()          # empirical traces, or the parametric fallback
    state = GeneratorState.create(traces, rate=10_000, clock="wall")
    body = encode_batch(generate_batch(1000, np.random.default_rng(1), state))

The CLI is :func:`hub.simulate.cli.main`; see ``docs/simulate.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hubcore.lazy import lazy_attribute

if TYPE_CHECKING:
    from hub.simulate.generator import (
        GeneratorState,
        encode_batch,
        encode_lines,
        generate_batch,
        generate_timed,
    )
    from hub.simulate.scenarios import SCENARIOS, Scenario, make_scenario, register
    from hub.simulate.traces import TraceData, load_or_fallback, load_traces, synthetic_traces

#: Each public name -> the submodule that defines it, imported on first use (:mod:`hubcore.lazy`): importing
#: ``hub.simulate.cli`` for ``hub simulate --help`` does not import the generator or the senders (httpx, gRPC).
_SOURCES: dict[str, str] = {
    **dict.fromkeys(("GeneratorState", "encode_batch", "encode_lines", "generate_batch", "generate_timed"),
                    "generator"),
    **dict.fromkeys(("SCENARIOS", "Scenario", "make_scenario", "register"), "scenarios"),
    **dict.fromkeys(("TraceData", "load_or_fallback", "load_traces", "synthetic_traces"), "traces"),
}  # fmt: skip

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

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any misspelt name

    def __getattr__(name: str) -> Any:
        return lazy_attribute(__name__, _SOURCES, name)
