"""The catalog (:mod:`hub.simulate.catalog`) and the token pools as numpy arrays, built once per run.

The generator draws categories with :func:`pick` from cumulative weights made by :func:`cum`; a
:class:`Tables` holds every such table plus the per-workload token pools, concatenated.

    >>> import numpy as np
    >>> from hub.simulate.traces import synthetic_traces
    >>> pick(cum([1, 1, 2]), np.array([0.1, 0.3, 0.9])).tolist()
    [0, 1, 2]
    >>> t = Tables.build(synthetic_traces())
    >>> t.model_name[0], t.proj_name[0], int(t.pool_size.sum()) == len(t.pool_in)
    ('gpt-4o', 'support-bot', True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hub.simulate import catalog as C
from hub.simulate.traces import WORKLOADS, TraceData


def cum(weights: Sequence[float]) -> np.ndarray:
    """Cumulative, normalised weights (the last exactly 1.0)."""
    w = np.asarray(weights, dtype=np.float64)
    c = np.cumsum(w / w.sum())
    c[-1] = 1.0
    return c


def pick(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The category of each uniform draw in ``u`` under the cumulative weights ``cum``."""
    return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)


def _weights(pairs: Sequence[tuple[str, float]]) -> np.ndarray:
    return cum([w for _, w in pairs])


def _names(pairs: Sequence[tuple[str, float]]) -> list[str]:
    return [name for name, _ in pairs]


@dataclass(slots=True)
class Tables:
    """Catalog as numpy arrays and plain lists, built once."""

    model_name: list[str]
    model_provider: list[str]
    model_asset: list[str]
    price_in: np.ndarray
    price_out: np.ndarray
    ttft: np.ndarray
    per_tok: np.ndarray
    ctx: np.ndarray
    proj_name: list[str]
    proj_team_name: list[str]
    proj_team: np.ndarray
    proj_base_w: np.ndarray
    proj_model_cum: np.ndarray  # (P, M)
    proj_workload: np.ndarray
    pool_in: np.ndarray
    pool_out: np.ndarray
    pool_off: np.ndarray
    pool_size: np.ndarray
    users: list[list[str]]  # per project
    env_cum: np.ndarray
    env_name: list[str]
    region_cum: np.ndarray
    region_name: list[str]
    eur_region: int
    err_cum: np.ndarray
    err_name: list[str]
    pol_result_cum: np.ndarray
    gov_action_cum: np.ndarray
    threat_cum: np.ndarray
    level_cum: np.ndarray

    @classmethod
    def build(cls, traces: TraceData) -> Tables:
        models = C.MODELS
        projects = C.PROJECTS
        team_index = {t.name: i for i, t in enumerate(C.TEAMS)}
        team_w = {t.name: t.weight for t in C.TEAMS}
        pools = [traces.workloads[name] for name in WORKLOADS]
        sizes = [len(wl.input_tokens) for wl in pools]
        wl_index = {n: i for i, n in enumerate(WORKLOADS)}
        region_names = _names(C.REGIONS)
        return cls(
            model_name=[m.name for m in models],
            model_provider=[m.provider for m in models],
            model_asset=[m.asset_id for m in models],
            price_in=np.array([m.price_in for m in models]),
            price_out=np.array([m.price_out for m in models]),
            ttft=np.array([m.ttft_ms for m in models]),
            per_tok=np.array([m.per_token_ms for m in models]),
            ctx=np.array([m.context_window for m in models], dtype=np.int64),
            proj_name=[p.name for p in projects],
            proj_team_name=[p.team for p in projects],
            proj_team=np.array([team_index[p.team] for p in projects]),
            proj_base_w=np.array([team_w[p.team] * p.share for p in projects]),
            proj_model_cum=np.stack([cum(p.model_weights) for p in projects]),
            proj_workload=np.array([wl_index[p.workload] for p in projects]),
            pool_in=np.concatenate([wl.input_tokens for wl in pools]).astype(np.int64),
            pool_out=np.concatenate([wl.output_tokens for wl in pools]).astype(np.int64),
            pool_off=np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64),
            pool_size=np.array(sizes, dtype=np.int64),
            users=[[f"user-{p.name}-{k:03d}" for k in range(C.USERS_PER_PROJECT)] for p in projects],
            env_cum=_weights(C.ENVIRONMENTS),
            env_name=_names(C.ENVIRONMENTS),
            region_cum=_weights(C.REGIONS),
            region_name=region_names,
            eur_region=region_names.index(C.EUR_REGION),
            err_cum=_weights(C.ERROR_TYPES),
            err_name=_names(C.ERROR_TYPES),
            pol_result_cum=_weights(C.POLICY_RESULTS),
            gov_action_cum=_weights(C.GOVERNANCE_ACTIONS),
            threat_cum=_weights(C.THREAT_TYPES),
            level_cum=_weights(C.THREAT_LEVELS),
        )
