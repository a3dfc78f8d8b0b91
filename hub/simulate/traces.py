"""Empirical LLM workloads: token counts and arrival burstiness from public traces.

Three workloads are read from ``llm_traces`` (see :func:`locate_traces_dir`):

* ``code`` — Azure LLM inference trace 2023, code completion (``AzureLLMInferenceTrace_code.csv``);
* ``conversation`` — Azure 2023, chat (``AzureLLMInferenceTrace_conv.csv``);
* ``long_context`` — Mooncake FAST'25 conversation trace (``mooncake_conversation_trace.jsonl``).

Each gives (input tokens, output tokens) pairs, sampled jointly, and inter-arrival gaps normalised
to mean 1 so that they can be scaled to any rate. When the files are absent a parametric fallback
(lognormal token counts with constants fitted on the same traces, gamma gaps with CV 2) is used.

    >>> t = synthetic_traces(seed=1)
    >>> t.synthetic, sorted(t.workloads), bool(t.gaps.mean() > 0.9)
    (True, ['code', 'conversation', 'long_context'], True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec
import numpy as np

WORKLOADS: Final = ("code", "conversation", "long_context")

AZURE_CODE: Final = "AzureLLMInferenceTrace_code.csv"
AZURE_CONV: Final = "AzureLLMInferenceTrace_conv.csv"
MOONCAKE: Final = "mooncake_conversation_trace.jsonl"

# log-space mean / sd of (input, output) tokens, fitted on the traces above (see docs/simulate.md).
LOGNORMAL_FIT: Final[dict[str, tuple[float, float, float, float]]] = {
    "code": (6.999, 1.360, 2.788, 0.847),
    "conversation": (6.633, 0.985, 5.019, 0.859),
    "long_context": (8.737, 1.199, 5.336, 1.358),
}
FALLBACK_GAP_CV: Final = 2.0
_FALLBACK_SIZE: Final = 20_000


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    input_tokens: np.ndarray  # int64, > 0
    output_tokens: np.ndarray  # int64, > 0


@dataclass(frozen=True, slots=True)
class TraceData:
    """Token pools per workload, and one pool of inter-arrival gaps (mean 1, original order)."""

    workloads: dict[str, Workload]
    gaps: np.ndarray  # float64, >= 0, mean 1, in trace order (block-sampled to keep bursts)
    source: str
    synthetic: bool

    def describe(self) -> str:
        sizes = ", ".join(f"{k}={len(w.input_tokens)}" for k, w in self.workloads.items())
        kind = "parametric fallback" if self.synthetic else "empirical"
        return f"{kind} traces from {self.source} ({sizes}; {len(self.gaps)} gaps)"


class _MooncakeRow(msgspec.Struct):
    timestamp: float
    input_length: int
    output_length: int


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def locate_traces_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``explicit`` (``--traces-dir``), else ``$HUB_TRACES_DIR``, else ``<repo>/../shared/data/llm_traces``."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("HUB_TRACES_DIR")
    if env:
        return Path(env)
    return repo_root().parent / "shared" / "data" / "llm_traces"


def _normalised_gaps(ts_seconds: np.ndarray) -> np.ndarray:
    ts = np.sort(ts_seconds.astype(np.float64))
    gaps = np.diff(ts)
    mean = gaps.mean() if len(gaps) else 0.0
    if not len(gaps) or mean <= 0:
        return np.ones(0)
    return gaps / mean


def _read_azure(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import pandas as pd  # imported lazily: only needed when the files exist

    df = pd.read_csv(path)
    ts = pd.to_datetime(df["TIMESTAMP"]).astype("int64").to_numpy() / 1e9
    return (
        ts,
        df["ContextTokens"].to_numpy(dtype=np.int64),
        df["GeneratedTokens"].to_numpy(dtype=np.int64),
    )


def _read_mooncake(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lines = [ln for ln in path.read_bytes().split(b"\n") if ln.strip()]
    rows = msgspec.json.decode(b"[" + b",".join(lines) + b"]", type=list[_MooncakeRow])
    ts = np.fromiter((r.timestamp for r in rows), dtype=np.float64, count=len(rows)) / 1e3  # ms → s
    ins = np.fromiter((r.input_length for r in rows), dtype=np.int64, count=len(rows))
    outs = np.fromiter((r.output_length for r in rows), dtype=np.int64, count=len(rows))
    return ts, ins, outs


def _workload(name: str, ins: np.ndarray, outs: np.ndarray) -> Workload:
    keep = (ins > 0) & (outs > 0)
    return Workload(name, ins[keep], outs[keep])


def load_traces(directory: str | os.PathLike[str]) -> TraceData:
    """Read the three traces from ``directory``; raises ``FileNotFoundError`` if none is there."""
    d = Path(directory)
    workloads: dict[str, Workload] = {}
    gaps: list[np.ndarray] = []
    readers = (("code", AZURE_CODE, _read_azure), ("conversation", AZURE_CONV, _read_azure),
               ("long_context", MOONCAKE, _read_mooncake))  # fmt: skip
    for name, fname, reader in readers:
        path = d / fname
        if not path.is_file():
            continue
        ts, ins, outs = reader(path)
        wl = _workload(name, ins, outs)
        if len(wl.input_tokens):
            workloads[name] = wl
        gaps.append(_normalised_gaps(ts))
    if not workloads:
        raise FileNotFoundError(f"no LLM trace files ({AZURE_CODE}, {AZURE_CONV}, {MOONCAKE}) in {d}")
    # A workload whose file is missing borrows the parametric fit so every project has a pool.
    rng = np.random.default_rng(0)
    for name in WORKLOADS:
        if name not in workloads:
            workloads[name] = _parametric_workload(name, rng)
    all_gaps = np.concatenate(gaps) if gaps else np.ones(0)
    if len(all_gaps) < 2:
        all_gaps = _parametric_gaps(rng)
    return TraceData(workloads, all_gaps, str(d), synthetic=False)


def _parametric_workload(name: str, rng: np.random.Generator, size: int = _FALLBACK_SIZE) -> Workload:
    mu_i, sd_i, mu_o, sd_o = LOGNORMAL_FIT[name]
    ins = np.maximum(1, rng.lognormal(mu_i, sd_i, size)).astype(np.int64)
    outs = np.maximum(1, rng.lognormal(mu_o, sd_o, size)).astype(np.int64)
    return Workload(name, ins, outs)


def _parametric_gaps(rng: np.random.Generator, size: int = _FALLBACK_SIZE) -> np.ndarray:
    shape = 1.0 / FALLBACK_GAP_CV**2
    g = rng.gamma(shape, 1.0 / shape, size)
    return g / g.mean()


def synthetic_traces(seed: int = 0) -> TraceData:
    """The built-in parametric distribution (used when the trace files are absent)."""
    rng = np.random.default_rng(seed)
    workloads = {name: _parametric_workload(name, rng) for name in WORKLOADS}
    return TraceData(workloads, _parametric_gaps(rng), "built-in lognormal fit", synthetic=True)


def load_or_fallback(directory: str | os.PathLike[str] | None = None) -> tuple[TraceData, str | None]:
    """Load the traces, or fall back to :func:`synthetic_traces`; the second item is a warning to print."""
    d = locate_traces_dir(directory)
    try:
        return load_traces(d), None
    except (OSError, ValueError, msgspec.DecodeError, KeyError) as exc:
        return synthetic_traces(), (
            f"LLM traces not usable ({exc}); using the built-in parametric distribution "
            "(lognormal token counts, gamma inter-arrivals). Set --traces-dir or HUB_TRACES_DIR."
        )
