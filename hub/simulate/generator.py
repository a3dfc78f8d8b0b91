"""Pure, fast generation of native events (schema 1.0.0) for the six source modules.

One simulated LLM request yields a telemetry event (llm-observatory), a cost event (llm-costops,
unless the request failed), and sometimes a policy evaluation (llm-policy-engine), a security finding
(llm-sentinel), an audit record or violation (llm-governance) and a registry update (llm-registry); they
share the request's ``correlation_id``. The registry's assets are announced at the start.

All random draws are vectorised per chunk of requests (numpy); the only per-event Python work is
building the dicts. Timestamps follow a simulated schedule: request ``k`` happens at ``t0 + T_k`` where
the gaps ``T_k - T_{k-1}`` are empirical inter-arrival gaps (block-sampled, so bursts stay bursts)
scaled to the requested event rate.

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
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import numpy as np

from hub.simulate import catalog as C
from hub.simulate.traces import WORKLOADS, TraceData

if TYPE_CHECKING:
    from hub.simulate.scenarios import Scenario

SCHEMA_VERSION = "1.0.0"
DURATION_METRIC = "gen_ai.client.operation.duration"
# Gaps are read in contiguous blocks from a random place in the trace (bursts stay bursts), each block
# rescaled to mean 1 so that every GAP_WINDOW_S seconds or so carry the requested rate.
GAP_WINDOW_S = 2.0
MIN_GAP_BLOCK = 16
MAX_GAP_BLOCK = 4096
GAP_CLIP = 20.0  # cap single silences at 20 mean gaps (the Azure code trace has hour-long pauses)
MAX_LATENCY_MS = 300_000.0
MAX_CHUNK_SECONDS = 0.5  # one chunk of requests spans at most this much simulated time

EXPECTED_EVENTS_PER_REQUEST = 1.0 + (1.0 - C.P_ERROR) + C.P_POLICY + C.P_SECURITY + C.P_GOVERNANCE + C.P_REGISTRY_UPDATE

Event = dict[str, Any]
_encoder = msgspec.json.Encoder()


def _cum(weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    c = np.cumsum(w / w.sum())
    c[-1] = 1.0
    return c


def _pick(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)


@dataclass(slots=True)
class _Tables:
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
    def build(cls, traces: TraceData) -> _Tables:
        models = C.MODELS
        projects = C.PROJECTS
        team_index = {t.name: i for i, t in enumerate(C.TEAMS)}
        team_w = {t.name: t.weight for t in C.TEAMS}
        pools_in, pools_out, offs, sizes = [], [], [], []
        off = 0
        for name in WORKLOADS:
            wl = traces.workloads[name]
            pools_in.append(wl.input_tokens)
            pools_out.append(wl.output_tokens)
            offs.append(off)
            sizes.append(len(wl.input_tokens))
            off += len(wl.input_tokens)
        wl_index = {n: i for i, n in enumerate(WORKLOADS)}
        region_names = [r for r, _ in C.REGIONS]
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
            proj_model_cum=np.stack([_cum(p.model_weights) for p in projects]),
            proj_workload=np.array([wl_index[p.workload] for p in projects]),
            pool_in=np.concatenate(pools_in).astype(np.int64),
            pool_out=np.concatenate(pools_out).astype(np.int64),
            pool_off=np.array(offs, dtype=np.int64),
            pool_size=np.array(sizes, dtype=np.int64),
            users=[[f"user-{p.name}-{k:03d}" for k in range(C.USERS_PER_PROJECT)] for p in projects],
            env_cum=_cum([w for _, w in C.ENVIRONMENTS]),
            env_name=[e for e, _ in C.ENVIRONMENTS],
            region_cum=_cum([w for _, w in C.REGIONS]),
            region_name=region_names,
            eur_region=region_names.index(C.EUR_REGION),
            err_cum=_cum([w for _, w in C.ERROR_TYPES]),
            err_name=[e for e, _ in C.ERROR_TYPES],
            pol_result_cum=_cum([w for _, w in C.POLICY_RESULTS]),
            gov_action_cum=_cum([w for _, w in C.GOVERNANCE_ACTIONS]),
            threat_cum=_cum([w for _, w in C.THREAT_TYPES]),
            level_cum=_cum([w for _, w in C.THREAT_LEVELS]),
        )


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
    tables: _Tables | None = None
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
        st.tables = _Tables.build(traces)
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

    def timestamp_strings(self, sim_times: np.ndarray) -> list[str]:
        if self.clock == "wall":
            ms = np.full(len(sim_times), int(time.time() * 1000), dtype=np.int64)
        else:
            ms = np.round((self.t0 + sim_times) * 1000.0).astype(np.int64)
        strings: list[str] = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms", timezone="UTC").tolist()
        return strings


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_POS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def uuid4_strings(k: int, rng: np.random.Generator) -> list[str]:
    """``k`` random (version 4) UUID strings from ``rng`` — reproducible with a seed, vectorised."""
    if k <= 0:
        return []
    b = rng.integers(0, 256, size=(k, 16), dtype=np.uint8)
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    nib = np.empty((k, 32), dtype=np.uint8)
    nib[:, 0::2] = b >> 4
    nib[:, 1::2] = b & 0x0F
    chars = np.full((k, 36), ord("-"), dtype=np.uint8)
    chars[:, _UUID_POS] = _HEX[nib]
    s = chars.tobytes().decode("ascii")
    return [s[i : i + 36] for i in range(0, 36 * k, 36)]


def _envelope(
    event_id: str, ts: str, module: str, etype: str, payload: dict[str, Any], *, corr: str | None = None,
    severity: str = "info", environment: str = "production", tags: dict[str, str] | None = None,
) -> Event:  # fmt: skip
    ev: Event = {
        "event_id": event_id,
        "timestamp": ts,
        "source_module": module,
        "event_type": etype,
        "schema_version": SCHEMA_VERSION,
        "severity": severity,
        "environment": environment,
        "payload": payload,
    }
    if corr is not None:
        ev["correlation_id"] = corr
    if tags:
        ev["tags"] = tags
    return ev


def _model_attributes(m: C.ModelSpec) -> dict[str, str]:
    return {"family": m.family, "context_window": str(m.context_window),
            "price_input_per_1k_usd": repr(m.price_in), "price_output_per_1k_usd": repr(m.price_out)}  # fmt: skip


def registry_events(state: GeneratorState, rng: np.random.Generator) -> list[Event]:
    """llm-registry announcements of every model, each project's system prompt and two datasets."""
    payloads: list[dict[str, Any]] = []
    for m in C.MODELS:
        payloads.append({
            "asset_id": m.asset_id, "asset_type": "model", "name": m.name, "action": "registered",
            "version": m.version, "provider": m.provider, "owner": "platform-team",
            "attributes": _model_attributes(m),
        })  # fmt: skip
    for p in C.PROJECTS:
        payloads.append({
            "asset_id": f"prompt-{p.name}-system", "asset_type": "prompt", "name": f"{p.name}-system-prompt",
            "action": "registered", "version": "v1", "owner": p.team,
            "attributes": {"project": p.name, "workload": p.workload},
        })  # fmt: skip
    for name, owner in (("support-kb", "support"), ("research-corpus", "research")):
        payloads.append({
            "asset_id": f"dataset-{name}", "asset_type": "dataset", "name": name, "action": "registered",
            "version": "2024.11", "owner": owner, "attributes": {"classification": "internal"},
        })  # fmt: skip
    ids = uuid4_strings(len(payloads), rng)
    ts = state.timestamp_strings(np.array([state.sim_time]))[0]
    tags = {"tenant_id": state.tenant} if state.tenant else None
    return [
        _envelope(i, ts, "llm-registry", "metadata", p, tags=dict(tags) if tags else None)
        for i, p in zip(ids, payloads, strict=True)
    ]


def _chunk(m: int, rng: np.random.Generator, state: GeneratorState) -> tuple[list[Event], list[float]]:
    """Events of ``m`` simulated requests, in arrival order, with their simulated times."""
    T = state.tables
    assert T is not None
    scenario = state.scenario
    active = scenario.before_chunk(state, state.sim_time) if scenario is not None else False

    w = T.proj_base_w * state.team_mult[T.proj_team]
    speedup = w.sum() / T.proj_base_w.sum()
    gaps = state.next_gaps(m, rng) / (state.request_rate * speedup)
    times = state.sim_time + np.cumsum(gaps)
    t_start = state.sim_time
    state.sim_time = float(times[-1])

    r = rng.random((16, m))
    proj = _pick(np.cumsum(w / w.sum()), r[0])
    model = np.minimum((r[1][:, None] > T.proj_model_cum[proj]).sum(axis=1), len(T.model_name) - 1)
    wl = T.proj_workload[proj]
    k = T.pool_off[wl] + (r[2] * T.pool_size[wl]).astype(np.int64)
    outs = T.pool_out[k]
    ins = np.clip(T.pool_in[k], 1, np.maximum(1, T.ctx[model] - outs))
    user = (r[3] ** 2 * C.USERS_PER_PROJECT).astype(np.int64)
    env = _pick(T.env_cum, r[4])
    region = _pick(T.region_cum, r[5])
    err = r[6] < C.P_ERROR
    err_kind = _pick(T.err_cum, r[7])
    outs = np.where(err, 0, outs)

    noise = rng.lognormal(0.0, 0.35, (2, m))
    lat = T.ttft[model] * noise[0] * (1.0 + ins / 16_000.0) + outs * T.per_tok[model] * noise[1] ** 0.5
    tail = r[8] < C.P_HEAVY_TAIL
    if tail.any():
        lat = np.where(tail, lat * (1.0 + 3.0 * rng.pareto(1.5, m)), lat)
    lat = lat * state.latency_mult[model]
    if err.any():
        rl = 20.0 + 180.0 * r[9]
        to = 30_000.0 + 30_000.0 * r[9]
        se = T.ttft[model] * (0.2 + 2.0 * r[9])
        lat = np.where(err, np.choose(err_kind, [rl, se, to]), lat)
    lat = np.minimum(lat, MAX_LATENCY_MS)
    in_s = r[10] < C.P_LATENCY_IN_SECONDS
    value = np.round(np.where(in_s, lat / 1000.0, lat), 6)

    usd = ins * T.price_in[model] / 1000.0 + outs * T.price_out[model] / 1000.0
    eur = region == T.eur_region
    amount = np.round(np.where(eur, usd / C.USD_PER_EUR, usd), 10)
    amount = np.maximum(amount, 1e-10)

    has_pol = r[11] < C.P_POLICY
    has_sec = r[12] < C.P_SECURITY
    has_gov = r[13] < C.P_GOVERNANCE
    has_upd = r[14] < C.P_REGISTRY_UPDATE
    n_events = m + int((~err).sum() + has_pol.sum() + has_sec.sum() + has_gov.sum() + has_upd.sum())
    ids = uuid4_strings(n_events + m, rng)
    ts = state.timestamp_strings(times)

    # side-event parameters (cheap to draw for all, used for a few)
    pol_idx = (r[15] * len(C.POLICIES)).astype(np.int64)
    q = rng.random((6, m))
    pol_res = _pick(T.pol_result_cum, q[0])
    pol_ms = np.round(0.4 + 3.0 * q[1] ** 3, 3)
    gov_idx = (q[2] * len(C.GOVERNANCE_POLICIES)).astype(np.int64)
    gov_act = _pick(T.gov_action_cum, q[3])
    thr = _pick(T.threat_cum, q[4])
    lvl = _pick(T.level_cum, q[5])

    events: list[Event] = []
    etimes: list[float] = []
    add_ev = events.append
    add_t = etimes.append
    tenant = state.tenant
    model_name, model_provider, model_asset = T.model_name, T.model_provider, T.model_asset
    proj_name, team_name, users = T.proj_name, T.proj_team_name, T.users
    env_name, region_name, err_name = T.env_name, T.region_name, T.err_name
    lat_l, ins_l, outs_l = lat.tolist(), ins.tolist(), outs.tolist()
    cols = (proj.tolist(), model.tolist(), user.tolist(), env.tolist(), region.tolist(), err.tolist(),
            err_kind.tolist(), value.tolist(), in_s.tolist(), amount.tolist(), eur.tolist(), has_pol.tolist(),
            has_sec.tolist(), has_gov.tolist(), has_upd.tolist(), times.tolist())  # fmt: skip
    ev_i = m  # ids[0:m] are correlation ids
    for i, (p, mi, ui, ei, ri, e, ek, val, sec_unit, amt, is_eur, pol, sec, gov, upd, t) in enumerate(
        zip(*cols, strict=True)
    ):
        corr = ids[i]
        ts_i = ts[i]
        mname = model_name[mi]
        prov = model_provider[mi]
        aid = model_asset[mi]
        pname = proj_name[p]
        tname = team_name[p]
        uname = users[p][ui]
        envn = env_name[ei]
        tags = {"team": tname, "project": pname, "user_id": uname, "region": region_name[ri]}
        if tenant:
            tags["tenant_id"] = tenant
        tel: dict[str, Any] = {
            "metric_name": DURATION_METRIC, "value": val, "unit": "s" if sec_unit else "ms",
            "model": mname, "provider": prov, "operation": "chat", "request_id": corr, "asset_id": aid,
            "input_tokens": ins_l[i], "output_tokens": outs_l[i],
        }  # fmt: skip
        if e:
            tel["status"] = "error"
            tel["error_type"] = err_name[ek]
            sev = "error"
        else:
            sev = "warning" if lat_l[i] > 20_000.0 else "info"
        add_ev({"event_id": ids[ev_i], "timestamp": ts_i, "source_module": "llm-observatory",
                "event_type": "telemetry", "schema_version": SCHEMA_VERSION, "correlation_id": corr,
                "severity": sev, "environment": envn, "tags": tags, "payload": tel})  # fmt: skip
        add_t(t)
        ev_i += 1
        if not e:
            add_ev({"event_id": ids[ev_i], "timestamp": ts_i, "source_module": "llm-costops",
                    "event_type": "cost", "schema_version": SCHEMA_VERSION, "correlation_id": corr,
                    "severity": "info", "environment": envn, "tags": dict(tags),
                    "payload": {"cost_type": "token", "amount": amt, "currency": "EUR" if is_eur else "USD",
                                "model": mname, "provider": prov, "asset_id": aid,
                                "input_tokens": ins_l[i], "output_tokens": outs_l[i],
                                "project": pname, "team": tname, "request_id": corr}})  # fmt: skip
            add_t(t)
            ev_i += 1
        if pol:
            pid, pdesc, rules, why = C.POLICIES[pol_idx[i]]
            res = C.POLICY_RESULTS[pol_res[i]][0]
            pp: dict[str, Any] = {
                "policy_id": pid, "result": res, "evaluation_time": float(pol_ms[i]),
                "evaluation_time_unit": "ms", "policy_name": pdesc, "rule_ids": list(rules),
                "resource": f"project/{pname}", "subject": uname, "model": mname, "asset_id": aid,
            }  # fmt: skip
            if res != "pass":
                pp["reason"] = why
            add_ev(_envelope(ids[ev_i], ts_i, "llm-policy-engine", "policy", pp, corr=corr,
                             severity="warning" if res == "fail" else "info", environment=envn,
                             tags=dict(tags)))  # fmt: skip
            add_t(t)
            ev_i += 1
        if sec:
            add_ev(security_event(ids[ev_i], ts_i, C.THREAT_TYPES[thr[i]][0], C.THREAT_LEVELS[lvl[i]][0],
                                  float(0.5 + 0.49 * q[4, i]), mname, aid, uname,
                                  f"10.{p}.{ui // 200}.{ui % 200 + 1}", f"key-{pname}-{ui % 3}",
                                  corr, envn, dict(tags)))  # fmt: skip
            add_t(t)
            ev_i += 1
        if gov:
            gid, regulation, vtype = C.GOVERNANCE_POLICIES[gov_idx[i]]
            action = C.GOVERNANCE_ACTIONS[gov_act[i]][0]
            gp: dict[str, Any] = {
                "action": action, "policy_id": gid, "compliant": action != "violation",
                "regulation": regulation, "resource": f"project/{pname}", "user_id": uname,
                "asset_id": aid, "model": mname,
            }  # fmt: skip
            if action == "violation":
                gp["violation_type"] = vtype
                gp["description"] = f"{regulation} {vtype.replace('_', ' ')} in project {pname}"
            gsev = "error" if action == "violation" else ("warning" if action == "exception" else "info")
            add_ev(_envelope(ids[ev_i], ts_i, "llm-governance", "governance", gp, corr=corr, severity=gsev,
                             environment=envn, tags=dict(tags)))  # fmt: skip
            add_t(t)
            ev_i += 1
        if upd:
            spec = C.MODELS[mi]
            state.model_revision[mi] += 1
            rev = state.model_revision[mi]
            add_ev(_envelope(ids[ev_i], ts_i, "llm-registry", "metadata", {
                "asset_id": aid, "asset_type": "model", "name": mname, "action": "updated",
                "version": f"{spec.version}-r{rev}", "provider": prov, "owner": "platform-team",
                "attributes": {**_model_attributes(spec), "deployment_revision": str(rev)},
            }, tags={"tenant_id": tenant} if tenant else None))  # fmt: skip
            add_t(t)
            ev_i += 1
    state.requests += m
    if scenario is not None:
        scenario.after_chunk(state, rng, t_start, state.sim_time, active, events, etimes)
    return events, etimes


def security_event(
    event_id: str, ts: str, threat: str, level: str, confidence: float, model: str | None, asset_id: str | None,
    user_id: str | None, source_ip: str, api_key_id: str | None, corr: str | None, environment: str,
    tags: dict[str, str] | None,
) -> Event:  # fmt: skip
    """One llm-sentinel finding; ``action_taken`` and severity follow from the threat level."""
    if level in ("high", "critical"):
        action = "redacted" if threat == "pii_leak" else "blocked"
    else:
        action = "flagged" if level == "medium" else "allowed"
    indicators = C.THREAT_INDICATORS.get(threat, ("unknown",))
    payload: dict[str, Any] = {
        "threat_type": threat, "threat_level": level, "confidence": round(confidence, 4),
        "action_taken": action, "source_ip": source_ip,
        "indicators": {"pattern": indicators[int(confidence * 1000) % len(indicators)]},
        "description": f"{threat.replace('_', ' ')} ({level}) detected",
    }  # fmt: skip
    for key, val in (("model", model), ("asset_id", asset_id), ("user_id", user_id),
                     ("api_key_id", api_key_id), ("request_id", corr)):  # fmt: skip
        if val is not None:
            payload[key] = val
    severity = {"critical": "critical", "high": "error"}.get(level, "warning")
    return _envelope(event_id, ts, "llm-sentinel", "security", payload, corr=corr, severity=severity,
                     environment=environment, tags=tags)  # fmt: skip


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
        ev, tt = _chunk(m, rng, state)
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


def encode_batch(events: Sequence[Event]) -> bytes:
    """The JSON array body of ``POST /api/v1/events``."""
    return _encoder.encode(events)


def encode_lines(events: Sequence[Event]) -> bytes:
    """JSON Lines (one event per line, trailing newline) for ``--dry-run --output``."""
    return _encoder.encode_lines(events)
